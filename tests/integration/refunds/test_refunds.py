"""Refunds through the services (policy, invoices, events), sandbox gateway, SQLite and PostgreSQL: what a
refund gives back, what it takes away, how it shows on the invoice and in events, and bad input
that changes nothing, here or at the gateway."""

from __future__ import annotations

from datetime import timedelta

import pytest
from refund_kit import utc

from creditflow.purchase.top_up import purchase_top_up
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, InvalidRequest, NotFound, PaymentFailed
from creditflow.purchase.refund import create_refund, retry_refund
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 3, 10, 10)


def test_refund_of_a_first_purchase_ends_the_subscription_and_removes_its_plan_credits(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 3, 11, 10))
    s.spend("100")
    [invoice] = s.invoices()

    refund = create_refund(s.ctx, invoice.id, reason="not what I expected", actor="agent@example.com")

    assert (refund.status, refund.amount, refund.currency, refund.actor) == (
        "succeeded", 3000, "usd", "agent@example.com")
    assert refund.id.startswith("ref_")
    invoice = s.invoice(invoice.id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded) == ("refunded", 3000, 3000)
    ended = s.sub(sub.id)
    assert (ended.status, ended.ended_reason, ended.ended_at) == ("ended", "refunded", utc(2026, 3, 11, 10))
    assert s.live_credits("subscription") == Credits(0)
    assert [e.data["amount"] for e in s.events("credits.expired")] == ["7900"]
    assert s.sandbox() == [(3000, 3000)]
    [event] = s.events("refund.created")
    assert event.data == {"refund": refund.id, "invoice": invoice.id, "amount": 3000, "tax": 0, "currency": "usd",
                          "reason": "not what I expected", "invoice_status": "refunded"}
    assert event.created_at == utc(2026, 3, 11, 10)
    assert s.ledger_problems() == []

    # Ended means ended: nothing renews, nothing more is charged.
    s.advance(utc(2026, 5, 10, 10))
    assert s.sandbox() == [(3000, 3000)]
    assert len(s.invoices()) == 1


def test_refund_of_a_top_up_removes_what_is_left_of_its_lot(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    top_up = purchase_top_up(s.ctx, s.customer_id, bundle="credits_1000")
    s.spend("8200")  # the 8,000 plan credits first (they expire sooner), then 200 of the top-up

    refund = create_refund(s.ctx, top_up.invoice_id, reason="bought twice by mistake")

    assert refund.amount == 1000
    lot = s.lot(top_up.lot_id)
    assert (lot.remaining, lot.expired_at) == (Credits(0), START)
    [expired] = s.events("credits.expired")
    assert expired.data["lot"] == top_up.lot_id and expired.data["amount"] == "800"
    assert s.invoice(top_up.invoice_id).status == "refunded"
    assert s.sub(sub.id).status == "active"  # the subscription is another purchase
    assert s.sandbox() == [(3000, 0), (1000, 1000)]
    assert s.ledger_problems() == []


def test_partial_refunds_add_up_and_the_last_one_takes_the_purchase_back(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()

    create_refund(s.ctx, invoice.id, amount=1000, reason="goodwill")
    assert (s.invoice(invoice.id).status, s.invoice(invoice.id).amount_refunded) == ("paid", 1000)
    assert s.sub(sub.id).status == "active"  # a partial refund is a gesture, not a cancellation
    assert s.live_credits("subscription") == Credits.whole(8000)

    create_refund(s.ctx, invoice.id, amount=500, reason="more goodwill")
    last = create_refund(s.ctx, invoice.id, reason="cancelled after all")  # the rest by default

    assert last.amount == 1500
    assert (s.invoice(invoice.id).status, s.invoice(invoice.id).amount_refunded) == ("refunded", 3000)
    assert s.sub(sub.id).status == "ended"
    assert s.live_credits("subscription") == Credits(0)
    assert [(r.amount, r.status) for r in s.refunds()] == [(1000, "succeeded"), (500, "succeeded"),
                                                             (1500, "succeeded")]
    assert [(e.data["amount"], e.data["invoice_status"]) for e in s.events("refund.created")] == [
        (1000, "paid"), (500, "paid"), (1500, "refunded")]
    assert s.sandbox() == [(3000, 3000)]


def test_support_can_take_the_purchase_back_on_a_partial_refund(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()

    create_refund(s.ctx, invoice.id, amount=2000, reason="ended, two thirds back", end_subscription=True)

    assert (s.invoice(invoice.id).status, s.sub(sub.id).status) == ("paid", "ended")


def test_a_refund_never_exceeds_what_was_paid(story):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()

    with pytest.raises(InvalidRequest) as too_large:
        create_refund(s.ctx, invoice.id, amount=3001, reason="too much")
    assert (too_large.value.code, too_large.value.param) == ("amount_too_large", "amount")
    assert "3001" in too_large.value.message and "3000" in too_large.value.message

    create_refund(s.ctx, invoice.id, amount=1000, reason="part")
    with pytest.raises(InvalidRequest) as still_too_large:
        create_refund(s.ctx, invoice.id, amount=2001, reason="more than is left")
    assert still_too_large.value.code == "amount_too_large"

    assert [r.amount for r in s.refunds()] == [1000]
    assert s.invoice(invoice.id).amount_refunded == 1000
    assert s.sandbox() == [(3000, 1000)]
    assert len(s.events("refund.created")) == 1
    assert s.gateway.refund_calls == [s.refunds()[0].id]  # the refused ones never reached it


def test_a_refunded_invoice_cannot_be_refunded_again(story):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()
    create_refund(s.ctx, invoice.id, reason="all of it")

    for amount in (None, 1):
        with pytest.raises(Conflict) as again:
            create_refund(s.ctx, invoice.id, amount=amount, reason="again")
        assert (again.value.code, again.value.param) == ("already_refunded", "invoice")

    assert len(s.refunds()) == 1
    assert s.sandbox() == [(3000, 3000)]
    assert len(s.events("refund.created")) == 1
    assert len(s.gateway.refund_calls) == 1


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": None}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": "r", "amount": 0}, "amount"),
        ({"reason": "r", "amount": -5}, "amount"),
        ({"reason": "r", "amount": True}, "amount"),
        ({"reason": "r", "amount": 10.5}, "amount"),
        ({"reason": "r", "amount": "100"}, "amount"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(story, kwargs, param):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()

    with pytest.raises(InvalidRequest) as refused:
        create_refund(s.ctx, invoice.id, **kwargs)

    assert (refused.value.code, refused.value.param) == ("invalid_request", param)
    assert s.refunds() == [] and s.gateway.refund_calls == []
    assert s.invoice(invoice.id).amount_refunded == 0


def test_only_a_paid_invoice_can_be_refunded(story):
    s = story(START, "pm_card_declined")
    with pytest.raises(PaymentFailed):
        subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [void] = s.invoices()

    with pytest.raises(Conflict) as not_paid:
        create_refund(s.ctx, void.id, reason="nothing was paid")
    assert (not_paid.value.code, not_paid.value.param) == ("invoice_not_paid", "invoice")
    with pytest.raises(NotFound) as missing:
        create_refund(s.ctx, "inv_nope", reason="who?")
    assert missing.value.param == "invoice"
    assert s.refunds() == [] and s.gateway.refund_calls == []


def test_an_invoice_paid_from_the_account_balance_has_nothing_to_refund_by_card(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "ultimate", "monthly")
    # Support downgrades at once, the unused value to the account balance...
    from creditflow.purchase.change import change_subscription

    change_subscription(s.ctx, sub.id, plan="basic", term="monthly", timing="immediate", support=True,
                        reason="asked for it", unused_value="balance")
    change_invoice = s.invoices("plan_change")[-1]
    assert change_invoice.amount_paid == 0

    with pytest.raises(InvalidRequest) as nothing:
        create_refund(s.ctx, change_invoice.id, reason="refund the balance?")
    assert nothing.value.code == "nothing_to_refund"
    assert s.refunds() == []


def test_a_refused_refund_is_recorded_and_changes_nothing_else(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()
    s.gateway.mode = "refuse"

    with pytest.raises(PaymentFailed) as refused:
        create_refund(s.ctx, invoice.id, reason="try")

    assert (refused.value.code, refused.value.message) == ("refund_failed", "the bank refused the refund")
    [refund] = s.refunds()
    assert (refund.status, refund.failure_message) == ("failed", "the bank refused the refund")
    assert (s.invoice(invoice.id).status, s.invoice(invoice.id).amount_refunded) == ("paid", 0)
    assert s.sub(sub.id).status == "active"
    assert s.events("refund.created") == []

    s.gateway.mode = None  # a failed refund doesn't block a new one
    create_refund(s.ctx, invoice.id, reason="again")
    assert s.invoice(invoice.id).status == "refunded"


def test_a_refund_whose_answer_is_lost_stays_pending_until_retried_with_the_same_key(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()
    s.gateway.mode = "lose"

    with pytest.raises(PaymentFailed) as pending:
        create_refund(s.ctx, invoice.id, reason="lost on the way")
    assert pending.value.code == "refund_pending"
    [refund] = s.refunds()
    assert refund.status == "pending"
    assert s.invoice(invoice.id).amount_refunded == 0 and s.sub(sub.id).status == "active"
    with pytest.raises(Conflict) as busy:
        create_refund(s.ctx, invoice.id, reason="another one meanwhile")
    assert busy.value.code == "refund_in_progress"

    s.gateway.mode = None
    s.advance(START + timedelta(hours=1))
    finished = retry_refund(s.ctx, refund.id)

    assert (finished.id, finished.status, finished.amount) == (refund.id, "succeeded", 3000)
    assert s.gateway.refund_calls == [refund.id, refund.id]  # one idempotency key throughout
    assert s.invoice(invoice.id).status == "refunded"
    assert s.sub(sub.id).status == "ended"
    assert s.sandbox() == [(3000, 3000)]
    assert retry_refund(s.ctx, refund.id).status == "succeeded"  # settled: nothing more is sent
    assert len(s.gateway.refund_calls) == 2
    with pytest.raises(NotFound):
        retry_refund(s.ctx, "ref_nope")


def test_refund_of_a_renewal_ends_the_subscription_it_renewed(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 4, 10, 10))
    renewal = s.invoices("renewal")[0]

    create_refund(s.ctx, renewal.id, reason="charged after they meant to cancel")

    assert s.invoice(renewal.id).status == "refunded"
    assert s.invoice(s.invoices("subscription_create")[0].id).status == "paid"  # untouched
    assert (s.sub(sub.id).status, s.sub(sub.id).ended_reason) == ("ended", "refunded")
    assert s.live_credits("subscription") == Credits(0)
    assert s.sandbox() == [(3000, 0), (3000, 3000)]


def test_the_worker_finishes_a_lost_refund_and_takes_back_what_was_asked(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()
    s.gateway.mode = "lose"
    with pytest.raises(PaymentFailed):
        create_refund(s.ctx, invoice.id, reason="lost on the way", amount=1000, end_subscription=True)
    [refund] = s.refunds()

    s.advance(START + timedelta(minutes=1))  # within the grace period: the request may still answer
    assert s.gateway.refund_calls == [refund.id]
    s.advance(START + timedelta(minutes=3))  # still no answer: the worker asks again
    assert s.gateway.refund_calls == [refund.id, refund.id]
    assert s.refunds()[0].status == "pending"

    s.gateway.mode = None
    s.advance(START + timedelta(minutes=4))
    [finished] = s.refunds()
    assert (finished.status, finished.amount) == ("succeeded", 1000)
    assert s.gateway.refund_calls == [refund.id] * 3  # one idempotency key throughout
    invoice = s.invoice(invoice.id)
    assert (invoice.status, invoice.amount_refunded) == ("paid", 1000)
    assert s.sub(sub.id).status == "ended"  # a partial refund, but the request said to take back
    assert s.sandbox() == [(3000, 1000)]
    s.advance(START + timedelta(minutes=10))
    assert len(s.gateway.refund_calls) == 3
    assert s.ledger_problems() == []
