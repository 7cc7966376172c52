"""Strict reading of requests: the body must be a JSON object sent as JSON, and credit amounts
are plain ASCII decimals; anything else is refused with a clear error and changes nothing."""

from __future__ import annotations

import pytest

from api_kit import assert_error


@pytest.mark.parametrize("raw, content_type, status, code", [
    (b'{"external_id": "x"}', "text/plain", 415, "unsupported_media_type"),
    (b"external_id=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b"{not json", "application/json", 400, "invalid_json"),
    (b"[1, 2]", "application/json", 400, "invalid_json"),
    (b'"a string"', "application/json", 400, "invalid_json"),
    (b"", "application/json", 400, "invalid_json"),
])
def test_a_body_that_is_not_a_json_object_is_refused(api, raw, content_type, status, code):
    response = api.post("/v1/customers", content=raw, headers={"Content-Type": content_type})
    error = assert_error(response, status, code, None)
    expected = "application/json" if status == 415 else "JSON object"
    assert expected in error["message"]
    assert api.get("/v1/customers").json()["data"] == []


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/customers/{id}/credits/spend"])
def test_deeply_nested_json_is_400_not_500(api, path):
    customer = api.customer()
    response = api.post(path.format(id=customer["id"]), content=b"[" * 1000,
                        headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_json", None)


@pytest.mark.parametrize("amount", ["1_000", "１２", "٣", "1e2", "1e3", " 5 ", "5 ", "+5", ".5", "5.", "1.0000"])
def test_lenient_credit_strings_are_refused(api, amount):
    customer, _ = api.subscribed()
    before = api.get(f"/v1/customers/{customer['id']}/credits").json()
    response = api.post(f"/v1/customers/{customer['id']}/credits/spend",
                        {"amount": amount, "feature": "pro_models", "reference": "r"})
    error = assert_error(response, 422, "invalid_request", "amount")
    assert error["message"].startswith("amount ") and "3 decimal places" in error["message"]
    assert api.get(f"/v1/customers/{customer['id']}/credits").json() == before


def test_plain_credit_strings_and_numbers_are_still_taken(api):
    customer, _ = api.subscribed()
    for amount in ("5", "0.125", 2, 1.5):
        response = api.post(f"/v1/customers/{customer['id']}/credits/spend",
                            {"amount": amount, "feature": "pro_models", "reference": f"r{amount}"})
        assert response.status_code == 200, response.text


def test_booleans_and_integers_are_not_coerced(api):
    customer, subscription = api.subscribed()
    hold = {"amount": "1", "feature": "pro_models", "reference": "h", "ttl_seconds": True}
    assert_error(api.post(f"/v1/customers/{customer['id']}/credits/holds", hold), 422, "invalid_request", "ttl_seconds")
    assert_error(api.post(f"/v1/customers/{customer['id']}/credits/holds", {**hold, "ttl_seconds": "600"}),
                 422, "invalid_request", "ttl_seconds")
    response = api.post(f"/v1/subscriptions/{subscription['id']}/cancel", {"at_period_end": "yes"})
    assert_error(response, 422, "invalid_request", "at_period_end")
    assert api.get(f"/v1/subscriptions/{subscription['id']}").json()["cancel_at_period_end"] is False
