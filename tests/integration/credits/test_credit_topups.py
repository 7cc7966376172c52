"""Top-up bundles (bought with an active subscription, never expiring) and promo grants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from creditflow.credits.balance import get_balance
from creditflow.credits.models import CreditLot
from creditflow.credits.promo import grant_promo_credits
from creditflow.purchase.top_up import purchase_top_up
from creditflow.purchase.payment_method import set_payment_method
from creditflow.invoicing.models import Invoice
from creditflow.kit.errors import Conflict, InvalidRequest, NotFound, PaymentFailed
from creditflow.payment.models import SandboxCharge
from creditflow.worker.testclock import advance_test_clock

from .credit_kit import START, assert_ledger_clean, c, new_customer, new_test_clock, snapshot, subscribed


def charges(db, customer_id) -> list[tuple[int, str]]:
    with db.transaction(readonly=True) as session:
        return [tuple(r) for r in session.execute(select(SandboxCharge.amount, SandboxCharge.status)
                                                  .where(SandboxCharge.customer_ref == customer_id)
                                                  .order_by(SandboxCharge.created_at))]


def test_a_subscriber_buys_a_bundle_charged_first_then_credited(ctx):
    cid = new_customer(ctx)
    subscribed(ctx, cid)
    top_up = purchase_top_up(ctx, cid, bundle="credits_5000")

    assert (top_up.bundle, top_up.credits, top_up.amount_paid, top_up.currency) == ("credits_5000", c(5000), 4500, "usd")
    assert charges(ctx.db, cid) == [(900, "succeeded"), (4500, "succeeded")]
    with ctx.db.transaction(readonly=True) as session:
        lot = session.get(CreditLot, top_up.lot_id)
        invoice = session.get(Invoice, top_up.invoice_id)
        assert (lot.kind, lot.granted, lot.expires_at, lot.invoice_id) == ("top_up", c(5000), None, invoice.id)
        assert (invoice.purpose, invoice.status, invoice.total) == ("top_up", "paid", 4500)
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["top_up"] == c(5000)
    assert_ledger_clean(ctx.db)


def test_a_retried_purchase_never_charges_twice(ctx):
    cid = new_customer(ctx)
    subscribed(ctx, cid)
    first = purchase_top_up(ctx, cid, bundle="credits_1000", reference="idem-1")
    again = purchase_top_up(ctx, cid, bundle="credits_1000", reference="idem-1")
    assert again.replayed and (again.invoice_id, again.lot_id) == (first.invoice_id, first.lot_id)
    assert charges(ctx.db, cid) == [(900, "succeeded"), (1000, "succeeded")]
    with pytest.raises(Conflict) as error:
        purchase_top_up(ctx, cid, bundle="credits_5000", reference="idem-1")
    assert error.value.code == "reference_reused"
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["top_up"] == c(1000)


def test_a_top_up_on_free_is_refused_and_nothing_is_charged(ctx):
    cid = new_customer(ctx, payment_method="pm_card_ok")
    before = snapshot(ctx.db, cid)
    with pytest.raises(Conflict) as error:
        purchase_top_up(ctx, cid, bundle="credits_1000")
    assert (error.value.code, error.value.category) == ("subscription_required", "conflict")
    assert snapshot(ctx.db, cid) == before
    assert charges(ctx.db, cid) == []


def test_a_declined_top_up_grants_nothing(ctx):
    cid = new_customer(ctx)
    subscribed(ctx, cid)
    set_payment_method(ctx, cid, "pm_card_declined")
    with pytest.raises(PaymentFailed) as error:
        purchase_top_up(ctx, cid, bundle="credits_1000", reference="k")
    assert error.value.code == "payment_failed"
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["top_up"] == c(0)
    with ctx.db.transaction(readonly=True) as session:
        assert session.scalar(select(Invoice.status).where(Invoice.purpose == "top_up")) == "void"
    with pytest.raises(PaymentFailed):  # the same purchase retried: the same answer, no new charge
        purchase_top_up(ctx, cid, bundle="credits_1000", reference="k")
    assert charges(ctx.db, cid) == [(900, "succeeded"), (1000, "failed")]
    assert_ledger_clean(ctx.db)


def test_a_timed_out_top_up_is_credited_once_reconciled(ctx):
    clock = new_test_clock(ctx, START)
    cid = new_customer(ctx, test_clock=clock)
    subscribed(ctx, cid)
    set_payment_method(ctx, cid, "pm_card_timeout")
    with pytest.raises(PaymentFailed) as error:
        purchase_top_up(ctx, cid, bundle="credits_1000", reference="k")
    assert error.value.code == "payment_pending"
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["top_up"] == c(0)
    with pytest.raises(PaymentFailed) as error:
        purchase_top_up(ctx, cid, bundle="credits_1000", reference="k")
    assert error.value.code == "payment_pending"

    advance_test_clock(ctx, clock, START + timedelta(minutes=1))  # the worker reconciles

    assert purchase_top_up(ctx, cid, bundle="credits_1000", reference="k").credits == c(1000)
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["top_up"] == c(1000)
    assert charges(ctx.db, cid) == [(900, "succeeded"), (1000, "succeeded")]
    assert_ledger_clean(ctx.db)


def test_a_top_up_while_past_due_is_refused(ctx):
    clock = new_test_clock(ctx, START)
    cid = new_customer(ctx, test_clock=clock)
    subscribed(ctx, cid)
    set_payment_method(ctx, cid, "pm_card_declined")
    advance_test_clock(ctx, clock, START + timedelta(days=31, hours=1))  # renewal declined
    before = snapshot(ctx.db, cid)
    with pytest.raises(Conflict) as error:
        purchase_top_up(ctx, cid, bundle="credits_1000")
    assert error.value.code == "subscription_required"
    assert snapshot(ctx.db, cid) == before


def test_top_up_bad_input(ctx):
    cid = new_customer(ctx)
    subscribed(ctx, cid)
    with pytest.raises(InvalidRequest) as error:
        purchase_top_up(ctx, cid, bundle="credits_3")
    assert (error.value.code, error.value.param) == ("unknown_bundle", "bundle")
    with pytest.raises(NotFound):
        purchase_top_up(ctx, "cus_nobody", bundle="credits_1000")
    assert charges(ctx.db, cid) == [(900, "succeeded")]


# --- promo grants ----------------------------------------------------------------------------


def test_support_grants_promo_credits_with_a_reason_and_an_expiry(ctx):
    cid = new_customer(ctx)
    lot = grant_promo_credits(ctx, cid, amount="250.5", reason="outage on 3 March",
                              expires_at=START + timedelta(days=7), actor="alice@support")
    assert (lot.kind, lot.granted, lot.remaining, lot.reason) == ("promo", c("250.5"), c("250.5"), "outage on 3 March")
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["promo"] == c("250.5")
    ctx.clock.set(START + timedelta(days=7))
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["promo"] == c(0)
    assert_ledger_clean(ctx.db)


def test_a_retried_promo_grant_grants_once(ctx):
    cid = new_customer(ctx)
    first = grant_promo_credits(ctx, cid, amount="10", reason="x", reference="ticket-42")
    again = grant_promo_credits(ctx, cid, amount="10", reason="x", reference="ticket-42")
    assert again.replayed and again.id == first.id
    with pytest.raises(Conflict):
        grant_promo_credits(ctx, cid, amount="11", reason="x", reference="ticket-42")
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["promo"] == c(10)


@pytest.mark.parametrize("change, param", [
    (dict(amount="-5"), "amount"), (dict(amount="0"), "amount"), (dict(amount="1.0005"), "amount"),
    (dict(reason=""), "reason"), (dict(reason=None), "reason"), (dict(reason="x" * 501), "reason"),
    (dict(kind="top_up"), "kind"),
    (dict(expires_at=START - timedelta(seconds=1)), "expires_at"),
    (dict(expires_at=START.replace(tzinfo=None)), "expires_at"),
])
def test_bad_promo_grants_change_nothing(ctx, change, param):
    cid = new_customer(ctx)
    before = snapshot(ctx.db, cid)
    with pytest.raises(InvalidRequest) as error:
        grant_promo_credits(ctx, cid, **(dict(amount="5", reason="goodwill") | change))
    assert error.value.param == param
    assert snapshot(ctx.db, cid) == before
    with ctx.db.transaction(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(CreditLot)) == 0
