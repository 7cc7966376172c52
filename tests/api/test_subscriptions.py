from __future__ import annotations

from api_kit import SUPPORT_KEY, assert_error


def _on_clock(api, at="2026-03-10T10:00:00Z", plan="standard", term="monthly", payment_method="pm_card_ok"):
    clock = api.clock(at)
    customer = api.customer(test_clock=clock["id"], payment_method=payment_method)
    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": plan, "term": term})
    return clock, customer, sub


def test_subscribe_read_and_find(any_api):
    api = any_api
    clock, customer, sub = _on_clock(api)
    assert sub["id"].startswith("sub_") and sub["object"] == "subscription"
    assert (sub["customer"], sub["plan"], sub["term"], sub["status"]) == (customer["id"], "standard", "monthly",
                                                                          "active")
    assert sub["current_term_start"] == "2026-03-10T10:00:00Z"
    assert sub["current_term_end"] == "2026-04-10T10:00:00Z"
    assert sub["credit_period_end"] == "2026-04-10T10:00:00Z"
    assert sub["cancel_at_period_end"] is False and sub["ended_at"] is None and sub["scheduled_change"] is None
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}") == sub
    # One shape everywhere: the answer to a change has the same fields as any other.
    changed = api.ok("POST", f"/v1/subscriptions/{sub['id']}/change",
                     {"plan": "basic", "term": "monthly", "timing": "end_of_period"})
    assert set(changed) == set(sub) and sub["replaced_change"] is None
    api.ok("DELETE", f"/v1/subscriptions/{sub['id']}/scheduled_change")
    assert api.ok("GET", f"/v1/customers/{customer['id']}/subscription") == sub
    assert api.ok("GET", f"/v1/customers/{customer['id']}")["plan"] == "standard"
    balance = api.ok("GET", f"/v1/customers/{customer['id']}/credits")
    assert balance["by_kind"]["subscription"] == "8000"


def test_second_subscription_is_409(api):
    _, customer, _ = _on_clock(api)
    response = api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"})
    assert_error(response, 409, "subscription_exists")


def test_declined_card_is_402_and_starts_nothing(any_api):
    api = any_api
    customer = api.customer(payment_method="pm_card_declined")
    response = api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})
    assert_error(response, 402, "payment_failed")
    assert_error(api.get(f"/v1/customers/{customer['id']}/subscription"), 404, "not_found")
    assert api.ok("GET", f"/v1/customers/{customer['id']}")["plan"] == "free"


def test_unknown_things_are_404_or_422(api):
    customer = api.customer()
    assert_error(api.post("/v1/subscriptions", {"customer": "cus_nope", "plan": "standard", "term": "monthly"}),
                 404, "not_found", "customer")
    assert_error(api.post("/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "weekly"}),
                 422, "invalid_request", "term")
    assert_error(api.get("/v1/subscriptions/sub_nope"), 404, "not_found")
    assert_error(api.get(f"/v1/customers/{customer['id']}/subscription"), 404, "not_found")


def test_preview_then_change_with_the_quote(any_api):
    api = any_api
    clock, customer, sub = _on_clock(api)
    api.advance(clock["id"], "2026-03-25T12:00:00Z")
    quote = api.ok("POST", f"/v1/subscriptions/{sub['id']}/preview_change",
                   {"plan": "ultimate", "term": "monthly", "timing": "immediate"})
    assert quote["id"].startswith("quo_") and quote["object"] == "quote"
    assert (quote["subscription"], quote["kind"], quote["timing"], quote["currency"]) == (
        sub["id"], "upgrade", "immediate", "usd")
    assert quote["lines"][0] == {"kind": "new_plan", "description": "Ultimate plan, monthly", "amount": 5000}
    assert 0 < quote["amount_due"] < 5000
    assert quote["effective_at"] == "2026-03-25T12:00:00Z"
    assert quote["next_renewal_at"] == "2026-04-25T12:00:00Z" and quote["next_renewal_amount"] == 5000
    assert quote["credits_after"]["subscription"] == "16000"
    assert quote["expires_at"] == "2026-03-25T12:30:00Z"

    changed = api.ok("POST", f"/v1/subscriptions/{sub['id']}/change",
                     {"plan": "ultimate", "term": "monthly", "timing": "immediate", "quote": quote["id"]})
    assert changed["plan"] == "ultimate" and changed["current_term_end"] == "2026-04-25T12:00:00Z"
    invoices = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"]
    assert invoices[-1]["amount_paid"] == quote["amount_due"]


def test_quote_expired_and_stale(api):
    clock, customer, sub = _on_clock(api)
    body = {"plan": "ultimate", "term": "monthly", "timing": "immediate"}
    old = api.ok("POST", f"/v1/subscriptions/{sub['id']}/preview_change", body)
    api.advance(clock["id"], "2026-03-10T11:00:00Z")
    assert_error(api.post(f"/v1/subscriptions/{sub['id']}/change", {**body, "quote": old["id"]}), 409,
                 "quote_expired", "quote")

    fresh = api.ok("POST", f"/v1/subscriptions/{sub['id']}/preview_change", body)
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/change",
           {"plan": "basic", "term": "monthly", "timing": "end_of_period"})
    assert_error(api.post(f"/v1/subscriptions/{sub['id']}/change", {**body, "quote": fresh["id"]}), 409,
                 "quote_stale", "quote")
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["plan"] == "standard"


def test_change_errors(api):
    _, _, sub = _on_clock(api)
    path = f"/v1/subscriptions/{sub['id']}/change"
    assert_error(api.post(path, {"plan": "standard", "term": "monthly"}), 409, "same_plan")
    assert_error(api.post(path, {"plan": "basic", "term": "monthly", "timing": "immediate"}), 403, "support_only")
    assert_error(api.post(path, {"plan": "basic", "term": "monthly", "timing": "later"}), 422, "invalid_request",
                 "timing")
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["plan"] == "standard"


def test_declined_immediate_upgrade_is_402_and_changes_nothing(api):
    clock = api.clock()
    customer = api.customer(test_clock=clock["id"], payment_method="pm_card_ok_then_declined")
    sub = api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "standard", "term": "monthly"})
    response = api.post(f"/v1/subscriptions/{sub['id']}/change", {"plan": "ultimate", "term": "monthly"})
    assert_error(response, 402, "payment_failed")
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}") == sub


def test_support_downgrades_at_once_with_a_reason(api):
    _, _, sub = _on_clock(api, plan="ultimate")
    body = {"plan": "standard", "term": "monthly", "timing": "immediate", "reason": "asked by phone"}
    changed = api.ok("POST", f"/v1/subscriptions/{sub['id']}/change", body, key=SUPPORT_KEY)
    assert changed["plan"] == "standard"
    assert_error(api.post(f"/v1/subscriptions/{sub['id']}/change",
                          {"plan": "ultimate", "term": "monthly", "unused_value": "refund"}), 403, "support_only")


def test_scheduled_change_replace_and_cancel(any_api):
    api = any_api
    _, _, sub = _on_clock(api)
    path = f"/v1/subscriptions/{sub['id']}"
    first = api.ok("POST", f"{path}/change", {"plan": "basic", "term": "monthly", "timing": "end_of_period"})
    assert first["scheduled_change"] == {"plan": "basic", "term": "monthly", "kind": "downgrade",
                                         "effective_at": "2026-04-10T10:00:00Z", "amount_due_then": 900}
    assert first["replaced_change"] is None
    second = api.ok("POST", f"{path}/change", {"plan": "ultimate", "term": "monthly", "timing": "end_of_period"})
    assert second["scheduled_change"]["kind"] == "upgrade"
    assert second["replaced_change"] == {"plan": "basic", "term": "monthly", "kind": "downgrade"}
    assert_error(api.post(f"{path}/cancel", {}), 409, "scheduled_upgrade_pending")

    dropped = api.ok("DELETE", f"{path}/scheduled_change")
    assert dropped["scheduled_change"] is None and dropped["plan"] == "standard"
    assert_error(api.delete(f"{path}/scheduled_change"), 409, "no_scheduled_change")


def test_cancel_at_period_end_resume_and_errors(any_api):
    api = any_api
    clock, customer, sub = _on_clock(api)
    path = f"/v1/subscriptions/{sub['id']}"
    assert_error(api.post(f"{path}/resume"), 409, "not_cancelling")
    canceled = api.ok("POST", f"{path}/cancel")  # no body: at the period end
    assert canceled["cancel_at_period_end"] is True and canceled["status"] == "active"
    assert canceled["canceled_at"] == "2026-03-10T10:00:00Z"
    resumed = api.ok("POST", f"{path}/resume")
    assert resumed["cancel_at_period_end"] is False
    api.ok("POST", f"{path}/cancel", {"at_period_end": True})
    api.advance(clock["id"], "2026-04-10T10:00:00Z")
    ended = api.ok("GET", f"{path}")
    assert ended["status"] == "ended" and ended["ended_at"] == "2026-04-10T10:00:00Z"
    assert api.ok("GET", f"/v1/customers/{customer['id']}")["plan"] == "free"


def test_cancel_at_once_needs_a_support_key(api):
    _, _, sub = _on_clock(api)
    path = f"/v1/subscriptions/{sub['id']}/cancel"
    assert_error(api.post(path, {"at_period_end": False}), 403, "support_only", "at_period_end")
    ended = api.ok("POST", path, {"at_period_end": False, "refund": "prorated", "reason": "fraud"}, key=SUPPORT_KEY)
    assert ended["status"] == "ended" and ended["ended_at"] == "2026-03-10T10:00:00Z"
    assert_error(api.post(path, {"at_period_end": False}, key=SUPPORT_KEY), 409, "subscription_ended")


def test_a_gateway_timeout_is_402_payment_pending_then_reconciled_by_the_worker(any_api):
    from creditflow.worker.runner import tick

    api = any_api
    customer = api.customer(payment_method="pm_card_timeout")
    body = {"customer": customer["id"], "plan": "standard", "term": "monthly"}
    assert_error(api.post("/v1/subscriptions", body), 402, "payment_pending")
    assert_error(api.get(f"/v1/customers/{customer['id']}/subscription"), 404, "not_found")
    assert_error(api.post("/v1/subscriptions", body), 409, "subscription_exists")  # nothing charged twice

    tick(api.ctx)  # the worker asks the gateway what became of the charge: it went through
    sub = api.ok("GET", f"/v1/customers/{customer['id']}/subscription")
    assert (sub["plan"], sub["status"]) == ("standard", "active")
    invoices = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"]
    assert [(i["status"], i["amount_paid"]) for i in invoices] == [("paid", 3000)]
