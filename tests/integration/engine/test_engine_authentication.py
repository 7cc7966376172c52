"""Renewals are charged off-session: a card that needs 3-D Secure can't be authenticated there,
so the renewal is dunned like a decline and an `invoice.payment_action_required` event asks the
customer to act. Paying it on-session from the page then completes it, with the anchor kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from engine_kit import utc
from sqlalchemy import select

from creditflow.events.models import Event
from creditflow.purchase import checkout, open_invoice
from creditflow.purchase.checkout import AuthenticationRequired
from creditflow.purchase.subscribe import subscribe
from creditflow.purchase.payment_method import set_payment_method
from creditflow.worker.runner import tick

START = utc(2026, 3, 10, 10)
RENEWAL = utc(2026, 4, 10, 10)


def test_an_off_session_renewal_needing_authentication_is_dunned_with_the_event(engine):
    customer = engine.customer("pm_card_ok")
    sub_id = subscribe(engine.ctx, customer, "standard", "monthly").id
    set_payment_method(engine.ctx, customer, "pm_card_authenticate")

    engine.at(RENEWAL)
    tick(engine.ctx, RENEWAL)

    sub = engine.sub(sub_id)
    assert sub.status == "past_due" and sub.next_retry_at == RENEWAL + timedelta(days=1)
    renewal = engine.invoices(customer)[-1]
    assert (renewal.purpose, renewal.status) == ("renewal", "open")
    assert [(a.status, a.failure_code) for a in engine.attempts(customer)][-1] == ("failed", "authentication_required")
    assert engine.charged(customer) == [3000]  # the first term only: nothing more was taken
    assert engine.event_count("subscription.past_due", customer) == 1
    [event] = engine._all(select(Event).where(Event.customer_id == customer,
                                              Event.type == "invoice.payment_action_required"))
    assert event.data["invoice"] == renewal.id and event.data["off_session"] is True

    # The customer pays it from the page (on-session): 3-D Secure this time, then it renews.
    now = RENEWAL + timedelta(hours=2)
    engine.at(now)
    with pytest.raises(AuthenticationRequired) as waiting:
        open_invoice.pay_open_invoice(engine.ctx, renewal.id, now)
    assert waiting.value.invoice_id == renewal.id
    with engine.db.transaction(readonly=True) as session:
        attempt = checkout.waiting_attempt(session, renewal.id)
    assert checkout.finish_authentication(engine.ctx, attempt.id, now, succeeded=True).status == "paid"
    sub = engine.sub(sub_id)
    assert sub.status == "active" and sub.current_term_end == utc(2026, 5, 10, 10)  # anchor kept
    assert engine.charged(customer) == [3000, 3000]


def test_a_purchase_waiting_for_authentication_is_never_charged_twice(engine):
    customer = engine.customer("pm_card_authenticate")
    with pytest.raises(AuthenticationRequired) as waiting:
        subscribe(engine.ctx, customer, "basic", "monthly")
    invoice_id = waiting.value.invoice_id
    with engine.db.transaction(readonly=True) as session:
        attempt = checkout.waiting_attempt(session, invoice_id)
    # Completed twice (a double click, a retried request): one charge, one start.
    assert checkout.finish_authentication(engine.ctx, attempt.id, START, succeeded=True).status == "paid"
    assert checkout.finish_authentication(engine.ctx, attempt.id, START, succeeded=True).status == "paid"
    assert engine.charged(customer) == [900]
    assert engine.event_count("subscription.created", customer) == 1


def test_a_plan_change_left_unauthenticated_is_closed_once_the_subscription_changed(engine):
    from creditflow.purchase.change import change_subscription

    customer = engine.customer("pm_card_ok")
    sub_id = subscribe(engine.ctx, customer, "standard", "monthly").id
    set_payment_method(engine.ctx, customer, "pm_card_authenticate")
    with pytest.raises(AuthenticationRequired) as waiting:
        change_subscription(engine.ctx, sub_id, plan="ultimate", term="monthly", timing="immediate")
    invoice_id = waiting.value.invoice_id
    assert engine.sub(sub_id).lease_owner == f"change:{invoice_id}"
    # The subscription changes meanwhile (a downgrade scheduled): the priced change no longer applies.
    change_subscription(engine.ctx, sub_id, plan="basic", term="monthly", timing="end_of_period")

    outcome = open_invoice.pay_open_invoice(engine.ctx, invoice_id, START)
    assert outcome.status == "void"
    sub = engine.sub(sub_id)
    assert (sub.plan, sub.lease_owner, sub.scheduled_plan) == ("standard", None, "basic")
    assert [i.status for i in engine.invoices(customer) if i.id == invoice_id] == ["void"]
    assert engine.charged(customer) == [3000]
