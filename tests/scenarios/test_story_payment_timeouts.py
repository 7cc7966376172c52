"""A payment whose outcome is unknown is reconciled later and never charged twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from scenario_kit import credits, utc

from creditflow.kit.errors import Conflict, NotFound, PaymentFailed
from creditflow.subscription.repository import get_subscription
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 3, 10, 10)


def test_first_purchase_that_times_out_is_reconciled_into_one_charge(world):
    mia = world.shopper(START, "pm_card_timeout")

    with pytest.raises(PaymentFailed) as pending:
        subscribe(world.ctx, mia.id, "standard", "monthly")

    assert pending.value.code == "payment_pending"
    [attempt] = mia.attempts()
    assert (attempt.status, attempt.amount) == ("unknown", 3000)
    assert len(mia.sandbox_charges()) == 1  # the charge did go through
    [invoice] = mia.invoices()
    assert invoice.status == "open"
    # Nothing has started: no live subscription, no credits, still on Free.
    [incomplete] = mia.subscriptions()
    assert incomplete.status == "incomplete"
    with world.db.transaction(readonly=True) as session, pytest.raises(NotFound):
        get_subscription(session, incomplete.id)
    assert mia.live() is None
    assert mia.plan() == "free"
    assert mia.lots() == []
    # The slot is held: a second purchase can't charge again meanwhile.
    with pytest.raises(Conflict) as exists:
        subscribe(world.ctx, mia.id, "standard", "monthly")
    assert exists.value.code == "subscription_exists"
    assert len(mia.sandbox_charges()) == 1

    mia.advance(START + timedelta(minutes=1))

    [attempt] = mia.attempts()
    assert attempt.status == "succeeded"
    assert attempt.gateway_reference == mia.sandbox_charges()[0].id
    assert mia.charged() == [3000]
    sub = mia.sub()
    assert sub.status == "active"
    assert sub.anchor == START  # the term runs from the purchase
    assert (sub.current_term_start, sub.current_term_end) == (START, utc(2026, 4, 10, 10))
    [invoice] = mia.invoices()
    assert (invoice.status, invoice.amount_paid) == ("paid", 3000)
    [lot] = mia.lots()
    assert (lot.granted, lot.expires_at) == (credits(8000), utc(2026, 4, 10, 10))
    assert len(mia.events("subscription.created")) == 1

    # Advancing again reconciles nothing more.
    mia.advance(START + timedelta(days=2))
    assert len(mia.sandbox_charges()) == 1
    assert len(mia.attempts()) == 1
    assert len(mia.lots()) == 1


class Crash(BaseException):
    """The process dies."""


def test_first_purchase_that_never_reached_the_gateway_starts_nothing(world, monkeypatch):
    """An attempt abandoned before the gateway call (a crash) is reconciled as not charged."""
    from creditflow.payment import attempts

    nora = world.shopper(START)
    calls = []

    def crash_before_the_call(gateway, ticket):
        calls.append(ticket)
        raise Crash  # the process dies between the commit and the gateway call

    monkeypatch.setattr(attempts, "charge", crash_before_the_call)
    with pytest.raises(Crash):
        subscribe(world.ctx, nora.id, "standard", "monthly")
    monkeypatch.undo()
    assert len(calls) == 1
    [attempt] = nora.attempts()
    assert attempt.status == "pending"
    assert nora.sandbox_charges() == []

    nora.advance(START + timedelta(minutes=9))  # not yet stale
    assert nora.attempts()[0].status == "pending"
    nora.advance(START + timedelta(minutes=10))

    [attempt] = nora.attempts()
    assert (attempt.status, attempt.failure_code) == ("failed", "not_charged")
    assert nora.sandbox_charges() == []
    assert [s.status for s in nora.subscriptions()] == []  # the incomplete purchase is gone
    assert nora.invoices()[0].status == "void"
    # The slot is free again: buying now works.
    subscribe(world.ctx, nora.id, "standard", "monthly")
    assert nora.charged() == [3000]


def test_a_renewal_that_times_out_is_reconciled_to_one_charge(world):
    olga = world.shopper(START)
    subscribe(world.ctx, olga.id, "standard", "monthly")
    olga.pay_with("pm_card_timeout")

    renewal = utc(2026, 4, 10, 10)
    olga.advance(renewal)

    # The charge timed out; the same advance reconciled it (the clock runs the due work at
    # its target instant): one charge, one attempt, settled from the sandbox's book.
    assert olga.charged() == [3000, 3000]
    [_, attempt] = olga.attempts()
    assert (attempt.created_at, attempt.status) == (renewal, "succeeded")
    assert attempt.gateway_reference == olga.sandbox_charges()[-1].id
    invoice = olga.invoices()[-1]
    assert (invoice.status, invoice.amount_paid, invoice.paid_at) == ("paid", 3000, renewal)
    sub = olga.sub()
    assert sub.status == "active"
    assert (sub.current_term_start, sub.current_term_end) == (renewal, utc(2026, 5, 10, 10))
    assert sub.due_at == utc(2026, 5, 10, 10)
    assert [lot.created_at for lot in olga.lots()] == [START, renewal]
    assert olga.lots()[-1].expires_at == utc(2026, 5, 10, 10)
    assert olga.plan_credits() == credits(8000)
    assert len(olga.events("subscription.renewed")) == 1

    # Later visits never charge it again; the next month times out and reconciles the same way.
    olga.advance(utc(2026, 5, 10, 10, 30))
    assert olga.charged() == [3000, 3000, 3000]
    assert len(olga.invoices()) == 3
    assert all(i.status == "paid" for i in olga.invoices())
    assert [a.status for a in olga.attempts()] == ["succeeded"] * 3
    olga.assert_ledger_balanced()
