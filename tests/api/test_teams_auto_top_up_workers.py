"""Auto top-up run by several workers at once buys once (a conditional UPDATE claims it), on
SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

from creditflow.purchase import auto_top_up


def test_several_workers_buy_one_bundle_for_one_crossing(any_api):
    api = any_api
    customer, _sub = api.subscribed("creator")
    invited = api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": "ana@example.com"}, status=201)
    api.ok("POST", f"/v1/members/{invited['id']}/accept", {"external_id": "ana"})
    owner_id = api.ok("GET", f"/v1/customers/{customer['id']}/members")["data"][0]["id"]
    api.ok("POST", f"/v1/customers/{customer['id']}/auto_top_up",
           {"enabled": True, "threshold": 99_000, "bundle": "credits_1000", "monthly_max": 5})
    api.ok("POST", f"/v1/customers/{customer['id']}/credits/spend",
           {"amount": 5000, "feature": "standard_models", "reference": "big", "member": owner_id})
    ctx = api.ctx
    now = ctx.clock.now()
    barrier = threading.Barrier(8)
    errors = []

    def worker():
        barrier.wait()
        try:
            auto_top_up.run(ctx, now)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = api.ok("GET", "/v1/events", params={"customer": customer["id"], "type": "auto_top_up.succeeded"})["data"]
    assert len(events) == 1
    invoices = api.ok("GET", "/v1/invoices", params={"customer": customer["id"]})["data"]
    assert sum(1 for invoice in invoices if any(line["kind"] == "top_up" for line in invoice["lines"])) == 1
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["available"] == "96000"
    # Still below the threshold after it: the same crossing buys nothing more.
    auto_top_up.run(ctx, ctx.clock.now())
    assert len(api.ok("GET", "/v1/events", params={"customer": customer["id"],
                                                   "type": "auto_top_up.succeeded"})["data"]) == 1


def test_a_card_that_needs_authentication_turns_auto_top_up_off(any_api):
    api = any_api
    customer, _sub = api.subscribed("creator")
    invited = api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": "ana@example.com"}, status=201)
    api.ok("POST", f"/v1/members/{invited['id']}/accept", {"external_id": "ana"})
    api.ok("POST", f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_card_authenticate"})
    api.ok("POST", f"/v1/customers/{customer['id']}/auto_top_up",
           {"enabled": True, "threshold": 99_000, "bundle": "credits_1000", "monthly_max": 5})
    api.ok("POST", f"/v1/customers/{customer['id']}/credits/spend",
           {"amount": 5000, "feature": "standard_models", "reference": "big", "member": invited["id"]})
    auto_top_up.run(api.ctx, api.ctx.clock.now())
    [failed] = api.ok("GET", "/v1/events", params={"customer": customer["id"], "type": "auto_top_up.failed"})["data"]
    assert failed["data"]["code"] == "authentication_required"
    state = api.ok("GET", f"/v1/customers/{customer['id']}/auto_top_up")
    assert state["enabled"] is False and state["last_failure"].startswith("authentication_required")
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["available"] == "95000"  # nothing granted
    auto_top_up.run(api.ctx, api.ctx.clock.now())  # off: nothing more is tried
    assert len(api.ok("GET", "/v1/events", params={"customer": customer["id"],
                                                   "type": "auto_top_up.failed"})["data"]) == 1


def test_a_claim_left_by_a_dead_worker_is_taken_up_after_its_lease_and_buys_once(any_api):
    from datetime import timedelta

    from creditflow.subscription.repository import live_subscription
    from creditflow.team import autotopup
    from creditflow.team.models import AutoTopUp

    api = any_api
    customer, _sub = api.subscribed("creator")
    invited = api.ok("POST", f"/v1/customers/{customer['id']}/members", {"email": "ana@example.com"}, status=201)
    api.ok("POST", f"/v1/members/{invited['id']}/accept", {"external_id": "ana"})
    api.ok("POST", f"/v1/customers/{customer['id']}/auto_top_up",
           {"enabled": True, "threshold": 99_000, "bundle": "credits_1000", "monthly_max": 5})
    api.ok("POST", f"/v1/customers/{customer['id']}/credits/spend",
           {"amount": 5000, "feature": "standard_models", "reference": "big", "member": invited["id"]})
    ctx, now = api.ctx, api.ctx.clock.now()
    with ctx.db.transaction() as session:  # a worker claims the purchase, then dies before buying
        settings = session.get(AutoTopUp, customer["id"])
        period = live_subscription(session, customer["id"]).credit_period_start
        assert autotopup.claim(session, settings, period=period, now=now) is not None
    auto_top_up.run(ctx, now + timedelta(minutes=1))  # within the lease: left to its worker
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["available"] == "95000"
    auto_top_up.run(ctx, now + autotopup.CLAIM_LEASE + timedelta(seconds=1))
    auto_top_up.run(ctx, now + autotopup.CLAIM_LEASE + timedelta(seconds=2))
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["available"] == "96000"
    events = api.ok("GET", "/v1/events", params={"customer": customer["id"], "type": "auto_top_up.succeeded"})["data"]
    assert len(events) == 1
    assert api.ok("GET", f"/v1/customers/{customer['id']}/auto_top_up")["in_flight"] is False
