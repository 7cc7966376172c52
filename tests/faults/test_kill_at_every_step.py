"""Kill the server at every step of a purchase, restart it, and check nothing doubled or got lost.

Each test drives one purchase through a real `creditflow serve` armed with a fault point
(`CREDITFLOW_FAULT_POINT`), sees it die by SIGKILL at that point, restarts it unarmed on the
same database, moves the test clock past the reconciliation delay so that the worker's test
clock run asks the gateway about anything left unsettled, and checks the invariants.
"""

from __future__ import annotations

import pytest

from fault_kit import (SUPPORT_KEY, Server, check_invariants, expect_killed, plan_lots, recover,
                       setup_subscribed)

STEPS = ("after_attempt_commit", "after_gateway", "before_outcome_commit", "after_outcome_commit")
# Every step on PostgreSQL; on SQLite the two where the money is taken but not yet recorded (a
# server start costs seconds on a shared machine, and the battery has a time budget).
CASES = [pytest.param("postgres", step, id=f"postgres-{step}", marks=pytest.mark.postgres) for step in STEPS] + [
    pytest.param("sqlite", step, id=f"sqlite-{step}") for step in ("after_gateway", "before_outcome_commit")]


@pytest.fixture
def backend_db(request):
    """The migrated database named by the case's first parameter."""
    return request.getfixturevalue("pg_db" if request.node.callspec.params["backend"] == "postgres" else "sqlite_db")


@pytest.mark.parametrize(("backend", "step"), CASES)
def test_top_up_killed_at_every_step(backend_db, tmp_path, backend, step):
    db = backend_db
    clock_id, customer_id, _ = setup_subscribed(db)
    armed = Server(db.url, tmp_path, fault=f"checkout.{step}")
    expect_killed(armed, "POST", f"/v1/customers/{customer_id}/top_ups", {"bundle": "credits_1000"})
    recover(db.url, tmp_path, clock_id, "2026-03-10T11:00:00Z")
    counts = check_invariants(db.url, tmp_path)
    assert counts["invoices"] == 2  # the subscription's and the top-up's
    if step != "after_attempt_commit":  # the gateway took the money: it is recorded and granted
        assert counts["paid"] == 2 and counts["top_up_lots"] == 1


@pytest.mark.parametrize(("backend", "step"), CASES)
def test_immediate_upgrade_killed_at_every_step(backend_db, tmp_path, backend, step):
    db = backend_db
    clock_id, _, sub = setup_subscribed(db)
    armed = Server(db.url, tmp_path, fault=f"checkout.{step}")
    expect_killed(armed, "POST", f"/v1/subscriptions/{sub['id']}/change",
                   {"plan": "standard", "term": "monthly", "timing": "immediate"})
    after = recover(db.url, tmp_path, clock_id, "2026-03-10T11:00:00Z", sub["id"])
    counts = check_invariants(db.url, tmp_path)
    assert counts["invoices"] == 2
    # Paid means upgraded, with the new plan's credits granted once; unpaid means unchanged.
    assert (after["plan"] == "standard") == (counts["paid"] == 2), (after, counts)
    assert plan_lots(db.url, sub["id"]) == (2 if after["plan"] == "standard" else 1)
    if step != "after_attempt_commit":
        assert after["plan"] == "standard"


@pytest.mark.parametrize(("backend", "step"), CASES)
def test_renewal_killed_at_every_step(backend_db, tmp_path, backend, step):
    db = backend_db
    clock_id, _, sub = setup_subscribed(db)
    armed = Server(db.url, tmp_path, fault=f"renewal.{step}")
    expect_killed(armed, "POST", f"/v1/test_clocks/{clock_id}/advance", {"frozen_time": "2026-04-10T10:00:00Z"})
    # Two days on: past the lease, the stale-attempt delay and the first dunning retry.
    after = recover(db.url, tmp_path, clock_id, "2026-04-12T10:00:00Z", sub["id"])
    counts = check_invariants(db.url, tmp_path)
    assert after["status"] == "active", after
    assert counts["paid"] == 2  # the first term and its renewal, each charged once (checked above)
    assert plan_lots(db.url, sub["id"]) == 2  # March and April, each granted once


@pytest.mark.parametrize(("backend", "step"), CASES)
def test_refund_killed_at_every_step(backend_db, tmp_path, backend, step):
    db = backend_db
    clock_id, _, sub = setup_subscribed(db)
    invoice_id = sub["latest_invoice"] if isinstance(sub.get("latest_invoice"), str) else None
    armed = Server(db.url, tmp_path, fault=f"refund.{step}")
    if invoice_id is None:
        invoices = armed.ok("GET", f"/v1/invoices?customer={sub['customer']}")["data"]
        invoice_id = invoices[0]["id"]
    expect_killed(armed, "POST", "/v1/refunds", {"invoice": invoice_id, "reason": "fault battery"},
                   key=SUPPORT_KEY)
    after = recover(db.url, tmp_path, clock_id, "2026-03-10T11:00:00Z", sub["id"])
    counts = check_invariants(db.url, tmp_path)
    # The refund was committed as pending before the kill: it finishes, once, and takes back.
    assert counts["refunded"] == 1
    assert after["status"] == "canceled" or after["status"] == "ended", after
