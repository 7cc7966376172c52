"""Teams told month by month on a test clock, through the HTTP API: seats by plan (the owner's
included), members' monthly limits on the shared pool and their reset on the team's monthly
boundary, a downgrade to fewer seats under each seat policy, the subscription's end suspending
seats and a new subscription restoring them, and auto top-up buying once per crossing up to its
monthly maximum. After each step the whole ledger is checked. Runs on SQLite and on PostgreSQL
(the `db` fixture)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.catalog.loader import default_catalog_path
from creditflow.credits.check import check_ledger
from creditflow.wiring import build_context

SERVER_KEY = "sk_test_server_teams_0123456789"


class Http:
    def __init__(self, db, catalog_path: str | None = None):
        settings = replace(Settings(), secret_key="story-secret", test_clocks=True,
                           bootstrap_keys=f"{SERVER_KEY}:server")
        self.db = db
        self.client = TestClient(create_app(build_context(db, catalog_path=catalog_path), settings))

    def call(self, method: str, path: str, body: dict | None = None, *, status: int | None = None) -> dict:
        response = self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {SERVER_KEY}"})
        if status is not None:
            assert response.status_code == status, response.text
        else:
            assert response.status_code in (200, 201), response.text
        return response.json()

    def error(self, method: str, path: str, body: dict | None, status: int, code: str) -> dict:
        answer = self.call(method, path, body, status=status)
        assert answer["error"]["code"] == code, answer
        return answer["error"]

    def owner(self, plan: str, at: str = "2026-03-10T10:00:00Z", card: str = "pm_card_ok") -> tuple[str, str, dict]:
        clock = self.call("POST", "/v1/test_clocks", {"frozen_time": at})["id"]
        customer = self.call("POST", "/v1/customers", {"external_id": f"owner-{clock}", "email": "owner@example.com",
                                                       "test_clock": clock})["id"]
        self.call("POST", f"/v1/customers/{customer}/payment_method", {"token": card})
        sub = self.call("POST", "/v1/subscriptions", {"customer": customer, "plan": plan, "term": "monthly"},
                        status=201)
        return clock, customer, sub

    def join(self, customer: str, name: str) -> dict:
        invited = self.call("POST", f"/v1/customers/{customer}/members", {"email": f"{name}@example.com"}, status=201)
        return self.call("POST", f"/v1/members/{invited['id']}/accept", {"external_id": f"{customer}-{name}"})

    def members(self, customer: str) -> dict:
        return self.call("GET", f"/v1/customers/{customer}/members")

    def statuses(self, customer: str) -> dict[str, str]:
        return {m["email"].split("@")[0]: m["status"] for m in self.members(customer)["data"]}

    def spend(self, customer: str, member: str, amount, reference: str, *, status: int = 200,
              feature: str = "standard_models") -> dict:
        return self.call("POST", f"/v1/customers/{customer}/credits/spend",
                         {"amount": amount, "feature": feature, "reference": reference, "member": member},
                         status=status)

    def available(self, customer: str) -> str:
        return self.call("GET", f"/v1/customers/{customer}/credits")["available"]

    def advance(self, clock: str, to: str) -> None:
        self.call("POST", f"/v1/test_clocks/{clock}/advance", {"frozen_time": to})

    def events(self, customer: str, event_type: str) -> list[dict]:
        return self.call("GET", f"/v1/events?customer={customer}&type={event_type}&limit=100")["data"]

    def ledger_is_sound(self) -> None:
        with self.db.transaction(readonly=True) as session:
            assert check_ledger(session) == []


@pytest.fixture
def http(db) -> Http:
    return Http(db)


def test_a_standard_team_through_upgrade_limits_downgrade_cancellation_and_return(http):
    clock, team, sub = http.owner("standard")
    assert http.members(team)["data"] == []  # not a team until the first invitation
    ana, ben = http.join(team, "ana"), http.join(team, "ben")
    members = http.members(team)
    assert (members["seats_used"], members["seat_limit"]) == (3, 3)
    owner = members["data"][0]
    assert owner["role"] == "owner" and owner["email"] == "owner@example.com"
    http.error("POST", f"/v1/customers/{team}/members", {"email": "cy@example.com"}, 409, "seat_limit_reached")
    http.ledger_is_sound()

    # 15 March: an upgrade to Ultimate (6 seats) lets the third member in.
    http.advance(clock, "2026-03-15T10:00:00Z")
    http.call("POST", f"/v1/subscriptions/{sub['id']}/change", {"plan": "ultimate", "term": "monthly",
                                                                 "timing": "immediate"})
    cy = http.join(team, "cy")
    assert http.members(team)["seats_used"] == 4 and http.members(team)["seat_limit"] == 6
    anchor_pool = http.available(team)

    # Ana is capped at 100 credits a month; Ben is not.
    http.call("POST", f"/v1/members/{ana['id']}", {"monthly_limit": 100})
    http.spend(team, ana["id"], 100, "ana-1")
    refused = http.spend(team, ana["id"], 1, "ana-2", status=402)
    assert refused["error"]["code"] == "member_limit_reached"
    http.spend(team, ben["id"], 500, "ben-1")
    http.spend(team, owner["id"], 25, "owner-1")
    assert float(http.available(team)) == float(anchor_pool) - 625  # one pool for all of them
    ledger = http.call("GET", f"/v1/customers/{team}/credits/ledger?limit=100")["data"]
    assert {(e["reference"], e["member"]) for e in ledger if e["kind"] == "spend"} == {
        ("ana-1", ana["id"]), ("ben-1", ben["id"]), ("owner-1", owner["id"])}
    http.ledger_is_sound()

    # The monthly boundary (15 April, the upgrade's new anchor): Ana's usage starts again.
    http.advance(clock, "2026-04-14T10:00:00Z")
    http.spend(team, ana["id"], 1, "ana-3", status=402)
    http.advance(clock, "2026-04-15T10:00:00Z")
    assert http.call("GET", f"/v1/members/{ana['id']}")["used_this_month"] == "0"
    http.spend(team, ana["id"], 60, "ana-4")
    assert http.call("GET", f"/v1/members/{ana['id']}")["used_this_month"] == "60"
    http.ledger_is_sound()

    # A downgrade to Standard (3 seats) is refused while 4 are taken; removing Cy lets it through.
    change = {"plan": "standard", "term": "monthly", "timing": "end_of_period"}
    http.error("POST", f"/v1/subscriptions/{sub['id']}/change", change, 409, "too_many_members")
    http.call("DELETE", f"/v1/members/{cy['id']}")
    http.call("POST", f"/v1/subscriptions/{sub['id']}/change", change)
    http.advance(clock, "2026-05-15T10:00:00Z")
    assert http.call("GET", f"/v1/customers/{team}/subscription")["plan"] == "standard"
    assert http.statuses(team) == {"owner": "active", "ana": "active", "ben": "active"}
    http.ledger_is_sound()

    # Cancelled at the end of the term: members stay, but every seat beyond Free's one is suspended.
    http.call("POST", f"/v1/subscriptions/{sub['id']}/cancel", {"at_period_end": True})
    http.advance(clock, "2026-06-15T10:00:00Z")
    assert http.statuses(team) == {"owner": "active", "ana": "suspended", "ben": "suspended"}
    assert {e["data"]["reason"] for e in http.events(team, "member.suspended")} == {"ended"}
    assert http.spend(team, ben["id"], 1, "ben-2", status=403)["error"]["code"] == "member_inactive"
    # The owner is on Free: the plan's features are gone.
    assert http.spend(team, owner["id"], 1, "owner-2", status=403,
                      feature="pro_models")["error"]["code"] == "subscription_required"
    http.spend(team, owner["id"], 1, "owner-3")
    http.ledger_is_sound()

    # Subscribing again brings them back.
    http.advance(clock, "2026-06-20T10:00:00Z")
    http.call("POST", "/v1/subscriptions", {"customer": team, "plan": "standard", "term": "monthly"}, status=201)
    assert http.statuses(team) == {"owner": "active", "ana": "active", "ben": "active"}
    http.spend(team, ben["id"], 10, "ben-3")
    http.ledger_is_sound()


def test_a_downgrade_under_the_suspend_newest_policy_suspends_the_newest(db, tmp_path):
    catalog = Path(default_catalog_path()).read_text(encoding="utf-8").replace(
        "seats_on_downgrade: refuse", "seats_on_downgrade: suspend_newest")
    path = tmp_path / "catalog.yaml"
    path.write_text(catalog, encoding="utf-8")
    http = Http(db, catalog_path=str(path))
    clock, team, sub = http.owner("ultimate")
    for name in ("ana", "ben", "cy", "dee"):
        http.join(team, name)
        http.advance(clock, http.call("GET", f"/v1/test_clocks/{clock}")["frozen_time"].replace(":00:00Z", ":01:00Z"))
    http.call("POST", f"/v1/subscriptions/{sub['id']}/change", {"plan": "standard", "term": "monthly",
                                                                 "timing": "end_of_period"})
    http.advance(clock, "2026-04-10T10:00:00Z")
    assert http.statuses(team) == {"owner": "active", "ana": "active", "ben": "active", "cy": "suspended",
                                   "dee": "suspended"}
    assert {e["data"]["reason"] for e in http.events(team, "member.suspended")} == {"downgrade"}
    assert (http.members(team)["seats_used"], http.members(team)["seat_limit"]) == (3, 3)
    http.ledger_is_sound()


def test_auto_top_up_buys_once_per_crossing_up_to_the_monthly_maximum(http):
    clock, team, _sub = http.owner("creator")  # 100,000 credits a month
    http.join(team, "ana")
    owner = http.members(team)["data"][0]
    settings = {"enabled": True, "threshold": 99_000, "bundle": "credits_1000", "monthly_max": 2}
    http.call("POST", f"/v1/customers/{team}/auto_top_up", settings)

    http.spend(team, owner["id"], 1500, "job-1")  # 98,500: below the threshold
    http.advance(clock, "2026-03-10T10:01:00Z")
    assert http.available(team) == "99500"
    [bought] = http.events(team, "auto_top_up.succeeded")
    assert bought["data"]["purchases_this_month"] == 1
    http.advance(clock, "2026-03-10T10:02:00Z")
    assert len(http.events(team, "auto_top_up.succeeded")) == 1  # above again: nothing more
    http.ledger_is_sound()

    # A crossing the bundle doesn't lift above the threshold buys once, not again and again.
    http.spend(team, owner["id"], 3000, "job-2")  # 96,500
    http.advance(clock, "2026-03-10T10:03:00Z")
    http.advance(clock, "2026-03-10T10:04:00Z")
    assert http.available(team) == "97500"
    assert len(http.events(team, "auto_top_up.succeeded")) == 2
    # The monthly maximum (2) is reached: a new crossing buys nothing this month.
    http.spend(team, owner["id"], 100, "job-3")
    http.advance(clock, "2026-03-10T10:05:00Z")
    assert len(http.events(team, "auto_top_up.succeeded")) == 2
    assert http.call("GET", f"/v1/customers/{team}/auto_top_up")["purchases_this_month"] == 2
    http.ledger_is_sound()

    # Next month: the plan's credits are back (re-armed); a declined card turns it off.
    http.advance(clock, "2026-04-10T10:00:00Z")
    assert http.available(team) == "102000"  # 100,000 of the plan and both top-ups (spends drew the plan first)
    http.call("POST", f"/v1/customers/{team}/payment_method", {"token": "pm_card_ok_then_declined"})
    http.spend(team, owner["id"], 3500, "job-4")  # 98,500
    http.advance(clock, "2026-04-10T10:01:00Z")
    assert len(http.events(team, "auto_top_up.succeeded")) == 3
    assert http.available(team) == "99500"
    http.spend(team, owner["id"], 2000, "job-5")  # a new crossing at once: the card now declines
    http.advance(clock, "2026-04-10T10:02:00Z")
    [failed] = http.events(team, "auto_top_up.failed")
    assert failed["data"]["code"] == "payment_failed"
    state = http.call("GET", f"/v1/customers/{team}/auto_top_up")
    assert (state["enabled"], state["purchases_this_month"]) == (False, 1)
    http.ledger_is_sound()
