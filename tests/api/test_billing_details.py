"""Billing details: set through the API, checked field by field, and copied onto each invoice
as it is issued (a later change leaves earlier invoices as they were)."""

from __future__ import annotations

import pytest

from api_kit import assert_error

ADDRESS = {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"}


def test_billing_details_are_kept_and_copied_onto_later_invoices_only(any_api):
    api = any_api
    customer = api.customer(payment_method="pm_card_ok")
    path = f"/v1/customers/{customer['id']}"
    first_sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})

    updated = api.ok("POST", path, {"name": "Ada GmbH", "country": "de", "address": ADDRESS,
                                    "tax_id": "DE 136 695 976"})
    assert (updated["name"], updated["country"], updated["tax_id"]) == ("Ada GmbH", "DE", "DE136695976")
    assert updated["address"] == {**ADDRESS, "line2": None, "state": None}
    assert api.ok("GET", path) == updated
    api.ok("POST", f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000"})

    api.ok("POST", path, {"name": "Ada Lovelace GmbH"})  # only what is sent changes
    assert api.ok("GET", path)["tax_id"] == "DE136695976"

    first, second = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"]
    assert first["subscription"] == first_sub["id"]
    assert first["bill_to"] == {"name": None, "address": None, "country": None, "tax_id": None}
    assert second["bill_to"] == {"name": "Ada GmbH", "address": {**ADDRESS, "line2": None, "state": None},
                                 "country": "DE", "tax_id": "DE136695976"}
    [event] = [e for e in api.ok("GET", f"/v1/events?customer={customer['id']}&limit=100")["data"]
               if e["type"] == "customer.updated"][:1]
    assert event["data"]["changed"] == ["address", "country", "name", "tax_id"]


@pytest.mark.parametrize("body, param", [
    ({"country": "XX"}, "country"),
    ({"country": "ÄÖ"}, "country"),
    ({"country": "DEU"}, "country"),
    ({"email": "not-an-email"}, "email"),
    ({"name": ""}, "name"),
    ({"address": {"line1": "x", "city": "Berlin"}}, "address.postal_code"),
    ({"address": {**ADDRESS, "floor": "3"}}, "address.floor"),
    ({"address": "Berlin"}, "address"),
    ({"country": "DE", "tax_id": "DE136695977"}, "tax_id"),  # a wrong check digit
    ({"tax_id": "DE136695976"}, "tax_id"),  # no country to check it against
    ({"country": "US", "tax_id": "12 34@56"}, "tax_id"),
    ({"external_id": "other"}, None),
])
def test_bad_billing_details_are_refused_naming_the_field_and_change_nothing(api, body, param):
    customer = api.customer(payment_method=None)
    path = f"/v1/customers/{customer['id']}"
    before = api.ok("GET", path)
    response = api.post(path, body)
    assert response.status_code == 422
    if param is not None:
        assert response.json()["error"]["param"] == param
    assert api.ok("GET", path) == before


def test_a_new_country_checks_the_tax_id_again(api):
    customer = api.customer(payment_method=None)
    path = f"/v1/customers/{customer['id']}"
    api.ok("POST", path, {"country": "FR", "tax_id": "FR40303265045"})
    assert_error(api.post(path, {"country": "DE"}), 422, "invalid_request", "tax_id")
    moved = api.ok("POST", path, {"country": "DE", "tax_id": "DE136695976"})
    assert (moved["country"], moved["tax_id"]) == ("DE", "DE136695976")
    assert api.ok("POST", path, {"tax_id": None})["tax_id"] is None
    assert_error(api.post("/v1/customers/cus_nope", {"name": "x"}), 404, "not_found")
