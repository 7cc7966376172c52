"""Support actions made with a support API key are in the audit log, as the console's are: who
(the key), what, why (the request's reason), and how it ended. Server-key calls are not
support actions and leave no record; a replayed request is recorded once."""

from __future__ import annotations

import uuid

from api_kit import SUPPORT_KEY, assert_error

from creditflow.support.service import NO_REASON, list_audit


def _audit(api, customer_id: str | None = None):
    with api.ctx.db.transaction(readonly=True) as session:
        return list_audit(session, customer_id=customer_id)


def _key_id(api, record) -> None:
    assert record.actor == f"API key {record.actor_id}"
    assert record.actor_id.startswith("key_")
    assert record.role == "support_key"


def test_an_immediate_downgrade_with_a_support_key_is_audited_with_its_reason(any_api):
    api = any_api
    customer, sub = api.subscribed("standard", "monthly")
    body = {"plan": "basic", "term": "monthly", "timing": "immediate", "unused_value": "none",
            "reason": "Customer asked by phone"}
    # A server key can't make it, and that is no support action: nothing recorded.
    assert_error(api.post(f"/v1/subscriptions/{sub['id']}/change", body), 403, "support_only")
    assert _audit(api, customer["id"]) == []

    changed = api.ok("POST", f"/v1/subscriptions/{sub['id']}/change", body, key=SUPPORT_KEY)
    assert changed["plan"] == "basic"
    (record,) = _audit(api, customer["id"])
    _key_id(api, record)
    assert (record.action, record.outcome, record.reason) == (
        "subscription.change", "succeeded", "Customer asked by phone")
    assert record.summary == "Changed to basic (monthly), immediate; unused value: none"
    assert record.details["subscription"] == sub["id"]
    assert record.completed_at is not None


def test_a_refund_is_audited_and_a_refused_one_is_recorded_as_failed(any_api):
    api = any_api
    customer, sub = api.subscribed("standard", "monthly")
    (invoice,) = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"]
    body = {"invoice": invoice["id"], "amount": 1000, "reason": "Charged twice"}
    api.ok("POST", "/v1/refunds", body, key=SUPPORT_KEY)
    assert_error(api.post("/v1/refunds", {**body, "amount": 5000}, key=SUPPORT_KEY), 422, "invalid_request")

    failed, done = _audit(api, customer["id"])  # newest first
    assert (done.action, done.outcome, done.reason) == ("invoice.refund", "succeeded", "Charged twice")
    assert done.summary == f"Refunded $10.00 on invoice {invoice['id']}"
    assert done.message.startswith("refund ref_") and "$10.00" in done.message
    # The refused refund is not written as done: it keeps what was asked, and why it failed.
    assert (failed.action, failed.outcome) == ("invoice.refund", "failed")
    assert failed.summary == f"Refund $50.00 on invoice {invoice['id']}"
    assert failed.message


def test_a_credit_grant_is_audited_once_even_when_the_request_is_replayed(any_api):
    api = any_api
    customer = api.customer()
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"amount": "1500", "reason": "Outage credit"}
    path = f"/v1/customers/{customer['id']}/credits/grants"
    first = api.ok("POST", path, body, key=SUPPORT_KEY, headers=headers)
    again = api.ok("POST", path, body, key=SUPPORT_KEY, headers=headers)
    assert again == first

    (record,) = _audit(api, customer["id"])
    _key_id(api, record)
    assert (record.action, record.outcome, record.reason) == ("credits.promo_grant", "succeeded", "Outage credit")
    assert record.summary == "Granted 1,500 promotional credits, never expiring"
    assert record.message == f"lot {first['id']}"


def test_ending_a_subscription_at_once_without_a_reason_is_recorded_as_giving_none(any_api):
    api = any_api
    customer, sub = api.subscribed("standard", "monthly")
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/cancel", {"at_period_end": False}, key=SUPPORT_KEY)
    (record,) = _audit(api, customer["id"])
    assert (record.action, record.outcome, record.reason) == ("subscription.end_now", "succeeded", NO_REASON)
    assert record.summary == "Cancelled the subscription now; refund: none"


def test_a_support_action_on_a_made_up_subscription_fails_and_is_recorded(any_api):
    api = any_api
    body = {"plan": "basic", "term": "monthly", "timing": "end_of_period", "reason": "typo test"}
    assert_error(api.post("/v1/subscriptions/sub_nope/change", body, key=SUPPORT_KEY), 404, "not_found")
    (record,) = [r for r in _audit(api) if r.details.get("subscription") == "sub_nope"]
    assert (record.customer_id, record.outcome, record.summary) == (
        None, "failed", "Change to basic (monthly), end of period; unused value: balance")
