from __future__ import annotations

from datetime import timedelta

import pytest

from api_kit import assert_error, make_api

from creditflow.kit.clock import parse_instant
from creditflow.kit.errors import NotFound
from creditflow.portal.service import redeem_portal_token


def test_portal_session_is_a_signed_one_time_link_for_five_minutes(api):
    customer = api.customer(payment_method=None)
    session = api.ok("POST", "/v1/portal_sessions", {"customer": customer["id"],
                                                     "return_url": "https://app.example.com/account"})
    assert session["object"] == "portal_session" and session["customer"] == customer["id"]
    assert session["url"].startswith("http://testserver/billing/session/")
    token = session["url"].rsplit("/", 1)[1]
    expires_at = parse_instant(session["expires_at"])

    with api.ctx.db.transaction() as db_session:
        portal = redeem_portal_token(db_session, token, secret_key="test-secret", now=expires_at - timedelta(seconds=1))
        assert portal.customer_id == customer["id"]
        assert portal.return_url == "https://app.example.com/account"
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for bad_token in (token, forged):  # used already; not signed by us
        with pytest.raises(NotFound), api.ctx.db.transaction() as db_session:
            redeem_portal_token(db_session, bad_token, secret_key="test-secret", now=expires_at - timedelta(seconds=2))


def test_portal_link_expires(api):
    customer = api.customer(payment_method=None)
    session = api.ok("POST", "/v1/portal_sessions", {"customer": customer["id"]})
    token = session["url"].rsplit("/", 1)[1]
    with pytest.raises(NotFound), api.ctx.db.transaction() as db_session:
        redeem_portal_token(db_session, token, secret_key="test-secret", now=parse_instant(session["expires_at"]))


def test_portal_session_errors(api):
    assert_error(api.post("/v1/portal_sessions", {"customer": "cus_nope"}), 404, "not_found", "customer")
    customer = api.customer(payment_method=None)
    assert_error(api.post("/v1/portal_sessions", {"customer": customer["id"], "return_url": "javascript:alert(1)"}),
                 422, "invalid_request", "return_url")


def test_test_clock_endpoints_are_404_unless_enabled(sqlite_db):
    api = make_api(sqlite_db, test_clocks=False)
    assert_error(api.post("/v1/test_clocks", {"frozen_time": "2026-01-01T00:00:00Z"}), 404, "not_found")
    assert_error(api.post("/v1/test_clocks/clock_x/advance", {"frozen_time": "2026-01-01T00:00:00Z"}), 404,
                 "not_found")
    assert_error(api.get("/v1/test_clocks/clock_x"), 404, "not_found")


def test_test_clock_runs_due_work_in_order(any_api):
    api = any_api
    clock = api.clock("2026-01-15T10:00:00Z")
    assert clock["id"].startswith("clock_") and clock["object"] == "test_clock"
    assert clock["frozen_time"] == "2026-01-15T10:00:00Z"
    customer = api.customer(test_clock=clock["id"])
    assert customer["test_clock"] == clock["id"] and customer["created_at"] == "2026-01-15T10:00:00Z"
    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "quarterly"})
    api.ok("POST", f"/v1/customers/{customer['id']}/credits/spend",
           {"amount": "1000", "feature": "standard_models", "reference": "j"})
    moved = api.advance(clock["id"], "2026-05-15T10:00:00Z")
    assert moved["frozen_time"] == "2026-05-15T10:00:00Z"
    assert api.ok("GET", f"/v1/test_clocks/{clock['id']}") == moved
    invoices = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"]
    assert [(i["purpose"], i["total"], i["created_at"]) for i in invoices] == [
        ("subscription_create", 7650, "2026-01-15T10:00:00Z"), ("renewal", 7650, "2026-04-15T10:00:00Z")]
    grants = [e for e in api.ok("GET", f"/v1/customers/{customer['id']}/credits/ledger?limit=100")["data"]
              if e["kind"] == "grant"]
    assert [g["created_at"] for g in grants] == [
        "2026-01-15T10:00:00Z", "2026-02-15T10:00:00Z", "2026-03-15T10:00:00Z", "2026-04-15T10:00:00Z",
        "2026-05-15T10:00:00Z"]
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["current_term_end"] == "2026-07-15T10:00:00Z"

    assert_error(api.post(f"/v1/test_clocks/{clock['id']}/advance", {"frozen_time": "2026-05-01T00:00:00Z"}),
                 422, "invalid_request", "frozen_time")
    assert_error(api.post("/v1/test_clocks/clock_nope/advance", {"frozen_time": "2027-01-01T00:00:00Z"}),
                 404, "not_found")
    assert_error(api.post("/v1/test_clocks", {"frozen_time": "2026-01-01T00:00:00"}), 422, "invalid_request",
                 "frozen_time")
    assert_error(api.post("/v1/test_clocks", {"frozen_time": 1767225600}), 422, "invalid_request", "frozen_time")
