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
