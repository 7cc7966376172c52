"""One list of event types (`EVENT_TYPES`): the events feed refuses a type outside it, the docs'
table lists exactly it, and every event the engine records has a type from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api_kit import SUPPORT_KEY, assert_error
from creditflow.events.service import EVENT_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"


@pytest.mark.parametrize("wrong", ["invoice.payed", "nope", "invoice.*", "*", "INVOICE.PAID", " invoice.paid"])
def test_an_unknown_event_type_is_refused(api, wrong):
    error = assert_error(api.get("/v1/events", params={"type": wrong}), 422, "invalid_request", "type")
    assert error["message"].startswith("type ") and "is not an event type" in error["message"]


def test_a_near_miss_gets_a_suggestion(api):
    error = assert_error(api.get("/v1/events", params={"type": "invoice.payed"}), 422, "invalid_request", "type")
    assert "did you mean 'invoice.paid'?" in error["message"]


def test_every_listed_type_is_accepted_and_filters(api):
    customer = api.customer()
    for event_type in EVENT_TYPES:
        listed = api.ok("GET", "/v1/events", params={"type": event_type})["data"]
        assert all(event["type"] == event_type for event in listed)
    created = api.ok("GET", "/v1/events", params={"type": "customer.created", "customer": customer["id"]})["data"]
    assert [event["data"]["customer"] for event in created] == [customer["id"]]


def test_the_docs_table_lists_exactly_the_event_types():
    text = DOCS.read_text(encoding="utf-8")
    table = text[text.index("| type | recorded when |"):]
    table = table[:table.index("\n\n")]
    documented = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", table, flags=re.MULTILINE)
    assert sorted(documented) == sorted(EVENT_TYPES)
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES)


def test_the_types_being_added_are_already_listed():
    assert {"coupon.redeemed", "invoice.payment_action_required", "customer.updated",
            "payment_method.updated"} <= set(EVENT_TYPES)


def test_every_event_recorded_along_a_customers_life_has_a_listed_type(api):
    customer, sub = api.subscribed()
    cid = customer["id"]
    api.ok("POST", f"/v1/customers/{cid}", {"name": "Ada", "country": "DE"})
    api.ok("POST", f"/v1/customers/{cid}/credits/spend", {"amount": "1", "feature": "pro_models", "reference": "s1"})
    api.ok("POST", f"/v1/customers/{cid}/credits/refund", {"reference": "s1"})
    hold = api.ok("POST", f"/v1/customers/{cid}/credits/holds",
                  {"amount": "2", "feature": "pro_models", "reference": "h1"})
    api.ok("POST", f"/v1/holds/{hold['id']}/settle", {"amount": "1"})
    hold = api.ok("POST", f"/v1/customers/{cid}/credits/holds",
                  {"amount": "2", "feature": "pro_models", "reference": "h2"})
    api.ok("POST", f"/v1/holds/{hold['id']}/release")
    api.ok("POST", f"/v1/customers/{cid}/top_ups", {"bundle": "credits_1000"})
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/change",
           {"plan": "ultimate", "term": "monthly", "timing": "end_of_period"})
    api.ok("DELETE", f"/v1/subscriptions/{sub['id']}/scheduled_change")
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/change", {"plan": "ultimate", "term": "monthly"})
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/cancel", {})
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/resume")
    invoice = api.ok("GET", f"/v1/invoices?customer={cid}")["data"][0]
    api.ok("POST", "/v1/refunds", {"invoice": invoice["id"], "reason": "goodwill", "amount": 100}, key=SUPPORT_KEY)
    recorded = {event["type"] for event in api.ok("GET", "/v1/events", params={"customer": cid, "limit": 100})["data"]}
    assert len(recorded) >= 12, recorded
    assert recorded <= set(EVENT_TYPES), recorded - set(EVENT_TYPES)
