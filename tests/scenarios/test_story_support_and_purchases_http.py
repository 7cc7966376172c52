"""Paths that only the HTTP API answered untested until now, told as stories on a test clock:
support ending a subscription with a prorated refund, support downgrading at once with
`unused_value: none`, an immediate upgrade removing a scheduled downgrade (and saying so), and
a top-up bought while the subscription is set to cancel. Every amount is worked out by hand.
Runs on SQLite and on PostgreSQL (the `db` fixture)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.wiring import build_context

SERVER_KEY = "sk_test_server_story_0123456789"
SUPPORT_KEY = "sk_test_support_story_0123456789"
DAY = 86_400


class Http:
    """The real app through a TestClient; `support=True` sends the support key."""

    def __init__(self, db):
        settings = replace(Settings(), secret_key="story-secret", test_clocks=True,
                           bootstrap_keys=f"{SERVER_KEY}:server,{SUPPORT_KEY}:support")
        self.client = TestClient(create_app(build_context(db), settings))

    def call(self, method: str, path: str, body: dict | None = None, *, support: bool = False,
             status: int | None = None) -> dict:
        key = SUPPORT_KEY if support else SERVER_KEY
        response = self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
        if status is not None:
            assert response.status_code == status, response.text
        else:
            assert response.status_code in (200, 201), response.text
        return response.json()

    def shopper(self, plan: str, term: str = "monthly", at: str = "2026-03-10T10:00:00Z") -> tuple[str, str, dict]:
        """A customer on a clock frozen at `at`, subscribed to `plan`: (clock id, customer id, subscription)."""
        clock = self.call("POST", "/v1/test_clocks", {"frozen_time": at})["id"]
        customer = self.call("POST", "/v1/customers", {"external_id": f"story-{clock}", "email": "s@example.com",
                                                       "test_clock": clock})["id"]
        self.call("POST", f"/v1/customers/{customer}/payment_method", {"token": "pm_card_ok"})
        sub = self.call("POST", "/v1/subscriptions", {"customer": customer, "plan": plan, "term": term}, status=201)
        return clock, customer, sub

    def advance(self, clock: str, to: str) -> None:
        self.call("POST", f"/v1/test_clocks/{clock}/advance", {"frozen_time": to})

    def invoices(self, customer: str) -> list[dict]:
        """Oldest first."""
        return sorted(self.call("GET", f"/v1/invoices?customer={customer}")["data"], key=lambda i: i["number"])

    def events(self, customer: str, event_type: str) -> list[dict]:
        return self.call("GET", f"/v1/events?customer={customer}&type={event_type}&limit=100")["data"]


@pytest.fixture
def http(db) -> Http:
    return Http(db)


def test_support_ends_a_subscription_at_once_with_a_prorated_refund(http):
    # Ultimate monthly, $50.00, from 10 March 10:00 to 10 April 10:00: 31 days.
    clock, customer, sub = http.shopper("ultimate")
    http.advance(clock, "2026-03-20T10:00:00Z")  # 10 days used, 21 left
    # The unused part: 5000 x 21/31 = 3387.09..., rounded half up to 3387.
    assert round(5000 * (21 * DAY) / (31 * DAY)) == 3387

    ended = http.call("POST", f"/v1/subscriptions/{sub['id']}/cancel",
                      {"at_period_end": False, "refund": "prorated", "reason": "outage credit"}, support=True)
    assert ended["status"] == "ended" and ended["ended_at"] == "2026-03-20T10:00:00Z"
    [invoice] = http.invoices(customer)
    assert (invoice["total"], invoice["amount_paid"], invoice["amount_refunded"]) == (5000, 5000, 3387)
    [refunded] = http.events(customer, "refund.created")
    assert (refunded["data"]["invoice"], refunded["data"]["amount"], refunded["data"]["currency"]) == (
        invoice["id"], 3387, "usd")
    assert refunded["data"]["reason"] == "outage credit"
    assert http.call("GET", f"/v1/customers/{customer}")["balance"] == 0
    assert http.call("GET", f"/v1/customers/{customer}")["plan"] == "free"


def test_support_downgrades_at_once_keeping_nothing_of_the_unused_value(http):
    clock, customer, sub = http.shopper("ultimate")
    http.advance(clock, "2026-03-20T10:00:00Z")
    changed = http.call("POST", f"/v1/subscriptions/{sub['id']}/change",
                        {"plan": "basic", "term": "monthly", "timing": "immediate", "unused_value": "none",
                         "reason": "asked for the cheaper plan"}, support=True)
    # A new term from now at the lower price.
    assert (changed["plan"], changed["term"], changed["status"]) == ("basic", "monthly", "active")
    assert (changed["current_term_start"], changed["current_term_end"]) == (
        "2026-03-20T10:00:00Z", "2026-04-20T10:00:00Z")
    assert changed["replaced_change"] is None

    first, second = http.invoices(customer)
    assert (first["total"], first["amount_paid"], first["amount_refunded"]) == (5000, 5000, 0)
    # Basic's full price is charged: the unused 3387 neither pays it nor goes anywhere.
    assert (second["total"], second["balance_applied"], second["amount_paid"]) == (900, 0, 900)
    assert second["status"] == "paid"
    assert http.call("GET", f"/v1/customers/{customer}")["balance"] == 0
    assert http.events(customer, "refund.created") == []
    [event] = http.events(customer, "subscription.changed")
    assert (event["data"]["kind"], event["data"]["timing"]) == ("downgrade", "immediate")
    assert event["data"]["to_account_balance"] == 0

    # The renewal a month later charges Basic again, with no balance to draw on.
    http.advance(clock, "2026-04-20T10:00:00Z")
    assert [i["amount_paid"] for i in http.invoices(customer)] == [5000, 900, 900]


def _scheduled_downgrade_then_upgrade(http) -> tuple[str, str, str, dict]:
    """Standard monthly from 10 March, Basic scheduled for 10 April, then on 20 March an
    immediate upgrade to Ultimate: (clock, customer, subscription id, the upgrade's answer)."""
    clock, customer, sub = http.shopper("standard")
    scheduled = http.call("POST", f"/v1/subscriptions/{sub['id']}/change",
                          {"plan": "basic", "term": "monthly", "timing": "end_of_period"})
    assert scheduled["scheduled_change"]["plan"] == "basic"
    assert scheduled["replaced_change"] is None
    http.advance(clock, "2026-03-20T10:00:00Z")
    upgraded = http.call("POST", f"/v1/subscriptions/{sub['id']}/change",
                         {"plan": "ultimate", "term": "monthly", "timing": "immediate"})
    return clock, customer, sub["id"], upgraded


def test_an_immediate_upgrade_removes_the_scheduled_change(http):
    clock, customer, sub_id, upgraded = _scheduled_downgrade_then_upgrade(http)
    assert upgraded["plan"] == "ultimate" and upgraded["scheduled_change"] is None
    stored = http.call("GET", f"/v1/subscriptions/{sub_id}")
    assert stored["scheduled_change"] is None and stored["replaced_change"] is None
    [changed] = http.events(customer, "subscription.changed")
    assert changed["data"]["replaced_scheduled_change"] == {"plan": "basic", "term": "monthly", "kind": "downgrade"}

    # The upgrade charged Ultimate less the unused 21 of 31 days of Standard: 5000 - 2032 (3000 x
    # 21/31 = 2032.26) = 2968. At the end of the new term Ultimate renews: the downgrade is gone.
    assert [i["amount_paid"] for i in http.invoices(customer)] == [3000, 2968]
    http.advance(clock, "2026-04-20T10:00:00Z")
    assert http.call("GET", f"/v1/subscriptions/{sub_id}")["plan"] == "ultimate"
    assert [i["amount_paid"] for i in http.invoices(customer)] == [3000, 2968, 5000]


def test_the_answer_to_an_immediate_upgrade_names_the_scheduled_change_it_removed(http):
    _, _, _, upgraded = _scheduled_downgrade_then_upgrade(http)
    assert upgraded["replaced_change"] == {"plan": "basic", "term": "monthly", "kind": "downgrade"}


def test_a_top_up_bought_while_set_to_cancel_outlives_the_subscription(http):
    clock, customer, sub = http.shopper("standard")
    http.advance(clock, "2026-03-25T10:00:00Z")
    cancelled = http.call("POST", f"/v1/subscriptions/{sub['id']}/cancel", {})
    assert (cancelled["status"], cancelled["cancel_at_period_end"]) == ("active", True)

    top_up = http.call("POST", f"/v1/customers/{customer}/top_ups", {"bundle": "credits_1000"}, status=201)
    assert (top_up["bundle"], top_up["credits"]) == ("credits_1000", "1000")
    invoices = http.invoices(customer)
    assert [i["amount_paid"] for i in invoices] == [3000, 1000]
    assert invoices[-1]["id"] == top_up["invoice"]
    balance = http.call("GET", f"/v1/customers/{customer}/credits")
    assert balance["by_kind"]["top_up"] == "1000"
    assert balance["by_kind"]["subscription"] == "8000"
    # Buying doesn't undo the cancellation.
    stored = http.call("GET", f"/v1/subscriptions/{sub['id']}")
    assert (stored["status"], stored["cancel_at_period_end"]) == ("active", True)

    http.advance(clock, "2026-04-10T10:00:00Z")
    assert http.call("GET", f"/v1/subscriptions/{sub['id']}")["status"] == "ended"
    after = http.call("GET", f"/v1/customers/{customer}/credits")
    assert after["by_kind"]["subscription"] == "0"
    assert after["by_kind"]["top_up"] == "1000"  # top-up credits never expire
    assert [i["amount_paid"] for i in http.invoices(customer)] == [3000, 1000]  # nothing renewed
    # On Free, a second top-up is refused and nothing is charged.
    http.call("POST", f"/v1/customers/{customer}/top_ups", {"bundle": "credits_1000"}, status=409)
    assert [i["amount_paid"] for i in http.invoices(customer)] == [3000, 1000]
