"""Validation errors read as our own sentences: they start with the field they name (lower case),
`param` is that field's path, and no pydantic wording or regular expression shows through."""

from __future__ import annotations

import re

import pytest

from api_kit import assert_error

# Pydantic's own phrasings, which must never reach a caller.
PYDANTIC_WORDING = re.compile(r"Input should|Value error|Field required|Extra inputs|String should|List should|"
                              r"should match pattern|\^|\[\^|\\s|pydantic", re.IGNORECASE)


def assert_our_sentence(error: dict, param: str, *phrases: str) -> None:
    message = error["message"]
    assert error["param"] == param, error
    assert message.startswith(f"{param} "), message
    assert not PYDANTIC_WORDING.search(message), message
    for phrase in phrases:
        assert phrase in message, message


@pytest.mark.parametrize("body, param, phrase", [
    ({"email": "a@example.com"}, "external_id", "is required"),  # missing
    ({"external_id": "x", "email": "a@example.com", "nickname": "ada"}, "nickname", "is not a field"),  # extra
    ({"external_id": "x" * 256, "email": "a@example.com"}, "external_id", "at most 255 characters"),  # too long
    ({"external_id": "", "email": "a@example.com"}, "external_id", "must not be empty"),  # too short
    ({"external_id": 12, "email": "a@example.com"}, "external_id", "must be a string"),  # string_type
    ({"external_id": "x", "email": "a@example.com", "test_clock": ""}, "test_clock", "must not be empty"),
])
def test_customer_create_errors_name_the_field_in_our_words(api, body, param, phrase):
    error = assert_error(api.post("/v1/customers", body), 422, "invalid_request", param)
    assert_our_sentence(error, param, phrase)
    assert api.get("/v1/customers").json()["data"] == []


def test_other_kinds_of_errors_read_the_same_way(api):
    customer, sub = api.subscribed()
    path = f"/v1/subscriptions/{sub['id']}"
    # literal_error
    error = assert_error(api.post(f"{path}/change", {"plan": "pro", "term": "monthly", "timing": "later"}),
                         422, "invalid_request", "timing")
    assert_our_sentence(error, "timing", "must be one of immediate or end_of_period")
    # bool_type
    error = assert_error(api.post(f"{path}/cancel", {"at_period_end": "yes"}), 422, "invalid_request",
                         "at_period_end")
    assert_our_sentence(error, "at_period_end", "must be true or false")
    # int_type, and bounds
    hold = {"amount": "1", "feature": "pro_models", "reference": "h", "ttl_seconds": 1.5}
    holds = f"/v1/customers/{customer['id']}/credits/holds"
    assert_our_sentence(assert_error(api.post(holds, hold), 422, "invalid_request", "ttl_seconds"),
                        "ttl_seconds", "must be an integer")
    assert_our_sentence(assert_error(api.post(holds, {**hold, "ttl_seconds": 0}), 422, "invalid_request",
                                     "ttl_seconds"), "ttl_seconds", "must be at least 1")
    # a query parameter: int_parsing and less_than_equal
    assert_our_sentence(assert_error(api.get("/v1/customers?limit=many"), 422, "invalid_request", "limit"),
                        "limit", "must be an integer")
    assert_our_sentence(assert_error(api.get("/v1/customers?limit=101"), 422, "invalid_request", "limit"),
                        "limit", "must be at most 100")
    # list too long, and a nested path
    endpoint = {"url": "http://127.0.0.1:9/hook", "events": ["invoice.paid"] * 101}
    assert_our_sentence(assert_error(api.post("/v1/webhook_endpoints", endpoint), 422, "invalid_request", "events"),
                        "events", "at most 100 items")
    endpoint = {"url": "http://127.0.0.1:9/hook", "events": ["invoice.paid", 7]}
    assert_our_sentence(assert_error(api.post("/v1/webhook_endpoints", endpoint), 422, "invalid_request",
                                     "events.1"), "events.1", "must be a string")
    # a validator of ours (credits) keeps its own predicate
    spend = {"amount": "-1", "feature": "pro_models", "reference": "s"}
    error = assert_error(api.post(f"/v1/customers/{customer['id']}/credits/spend", spend), 422, "invalid_request",
                         "amount")
    assert_our_sentence(error, "amount")


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@example.com", "@example.com", "ab"])
def test_a_bad_email_gets_a_plain_message(api, email):
    error = assert_error(api.post("/v1/customers", {"external_id": "x", "email": email}), 422, "invalid_request",
                         "email")
    assert error["message"] == "email must be an email address like name@example.com"
    assert api.get("/v1/customers").json()["data"] == []


@pytest.mark.parametrize("country", ["XX", "ZZ", "DEU", "D", "ÄÖ", "12"])
def test_an_unknown_country_is_refused_at_create(api, country):
    error = assert_error(api.post("/v1/customers", {"external_id": "x", "email": "a@example.com",
                                                    "country": country}), 422, "invalid_request", "country")
    assert_our_sentence(error, "country", "ISO 3166-1")
    assert api.get("/v1/customers").json()["data"] == []


def test_a_known_country_is_kept_upper_case(api):
    customer = api.customer(country="de")
    assert customer["country"] == "DE"
