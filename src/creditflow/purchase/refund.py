"""Refunds: money back through the gateway, and what a refund takes away.

Like a charge, a refund is committed as `pending` before the gateway is called, called outside
any transaction with the refund id as idempotency key, and its effect committed with the
outcome: refunding a subscription charge ends that subscription and removes its remaining plan
credits; refunding a top-up removes the unspent credits of its lot. A refund whose answer was
lost is finished by the worker (`retry_pending_refunds`), with the same idempotency key.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.credits.grants import take_back_purchase
from creditflow.customer.models import Customer
from creditflow.customer.service import customer_now
from creditflow.events.outbox import record_event
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import get_invoice
from creditflow.invoicing.tax import tax_share, with_tax
from creditflow.kit.db.rows import get_or_not_found
from creditflow.kit.errors import Conflict, CreditflowError, InvalidRequest, PaymentFailed
from creditflow.kit.faults import fault_point
from creditflow.kit.ids import new_id
from creditflow.kit.periods import Period
from creditflow.payment.attempts import charge_reference as _charge_reference
from creditflow.payment.gateway import RefundResult
from creditflow.refund.models import Refund
from creditflow.refund.service import SUBSCRIPTION_PURPOSES, refundable_amount
from creditflow.subscription.models import Subscription
from creditflow.subscription.proration import split_term
from creditflow.subscription.service import end_subscription as end_sub

log = logging.getLogger("creditflow.refunds")

MAX_REASON = 500  # the column's length
# A pending refund is left alone this long, so the request that created it can finish first.
GRACE = timedelta(minutes=2)
BATCH = 50


def create_refund(ctx: Context, invoice_id: str, *, reason: str, amount: int | None = None, actor: str | None = None,
                  end_subscription: bool | None = None) -> Refund:
    """Refund (part of) what a paid invoice collected. Support only: the caller checks scope.

    What the charge bought is taken back (the subscription ended, the top-up's unspent credits
    removed) by the refund that completes the invoice's refund (`end_subscription=None`); a
    partial refund is a goodwill gesture that takes nothing. `True` takes back on any refund,
    `False` never (the caller has already ended or changed the subscription).

    Refused before anything is written or sent to the gateway: InvalidRequest (`reason`,
    `amount`, `amount_too_large`, `nothing_to_refund`), NotFound (invoice), Conflict
    `already_refunded`, `invoice_not_paid`, `refund_in_progress`. After the gateway call:
    PaymentFailed `refund_failed` (the gateway refused; the refund is recorded as failed and the
    invoice is unchanged) or `refund_pending` (its answer was lost: `retry_refund` finishes it
    with the same idempotency key).
    """
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidRequest("a refund needs a reason", param="reason")
    if len(reason.strip()) > MAX_REASON:
        raise InvalidRequest(f"reason is longer than {MAX_REASON} characters", param="reason")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
        raise InvalidRequest("amount must be a positive integer of minor units", param="amount")

    with ctx.db.transaction() as session:
        invoice = get_invoice(session, invoice_id, for_update=True)
        now = customer_now(ctx, session, invoice.customer_id)
        if invoice.status == "refunded" or (invoice.status == "paid" and refundable_amount(invoice) <= 0
                                            and invoice.amount_refunded > 0):
            raise Conflict("the invoice has already been refunded", code="already_refunded", param="invoice")
        if invoice.status != "paid":
            raise Conflict(f"only a paid invoice can be refunded (this one is {invoice.status})",
                           code="invoice_not_paid", param="invoice")
        pending = session.scalar(select(func.count()).select_from(Refund).where(
            Refund.invoice_id == invoice.id, Refund.status == "pending"))
        if pending:
            raise Conflict("a refund of this invoice is in progress; retry that refund to finish it",
                           code="refund_in_progress", param="invoice")
        left = refundable_amount(invoice)
        amount = left if amount is None else amount
        if left <= 0:
            raise InvalidRequest("nothing was paid by card on this invoice", code="nothing_to_refund",
                                 param="invoice")
        if amount > left:
            raise InvalidRequest(f"amount {amount} exceeds the {left} that can still be refunded",
                                 code="amount_too_large", param="amount")
        charge_reference = _charge_reference(session, invoice.id)
        if charge_reference is None:
            raise InvalidRequest("no card payment of this invoice is on record", code="nothing_to_refund",
                                 param="invoice")
        refund = Refund(id=new_id("ref"), invoice_id=invoice.id, customer_id=invoice.customer_id,
                        amount=amount, currency=invoice.currency, status="pending", reason=reason.strip(),
                        actor=actor, takes_back=end_subscription, created_at=now)
        session.add(refund)
        refund_id = refund.id

    return _send(ctx, refund_id, charge_reference, amount, now, end_subscription)


def retry_refund(ctx: Context, refund_id: str) -> Refund:
    """Finish a refund left `pending` (the gateway's answer was lost): ask again with the same
    idempotency key, so the gateway pays out once, and take back what the first request said
    to. A settled refund is returned as it is. The worker does this by itself (`refund.jobs`)."""
    with ctx.db.transaction(readonly=True) as session:
        refund = get_or_not_found(session, Refund, refund_id, noun="refund", param="refund")
        if refund.status != "pending":
            return refund
        charge_reference = _charge_reference(session, refund.invoice_id)
        now = customer_now(ctx, session, refund.customer_id)
        amount, takes_back = refund.amount, refund.takes_back
    return _send(ctx, refund_id, charge_reference, amount, now, takes_back)


def _send(ctx: Context, refund_id: str, charge_reference: str, amount: int, now: datetime,
          end_subscription: bool | None) -> Refund:
    """Call the gateway outside any transaction, then record the outcome."""
    fault_point("refund.after_attempt_commit")
    try:
        result = ctx.gateway.refund(reference=charge_reference, amount=amount, idempotency_key=refund_id)
    except Exception as exc:  # the refund stays pending; retry_refund uses the same key
        raise PaymentFailed(f"The refund could not be confirmed ({exc}); retry it.", code="refund_pending") from exc
    fault_point("refund.after_gateway")

    def record(session: Session) -> Refund:
        refund = settle_refund(ctx, session, refund_id, result, now, end_subscription=end_subscription)
        fault_point("refund.before_outcome_commit")
        return refund

    refund = ctx.db.run(record)
    fault_point("refund.after_outcome_commit")
    if refund.status == "failed":
        raise PaymentFailed(refund.failure_message or "The refund failed.", code="refund_failed")
    return refund


def settle_refund(ctx: Context, session: Session, refund_id: str, result: RefundResult, now: datetime, *,
                  end_subscription: bool | None = None) -> Refund:
    refund = session.get(Refund, refund_id, with_for_update=True, populate_existing=True)
    if refund.status != "pending":
        return refund
    refund.completed_at = now
    if result.status != "succeeded":
        refund.status = "failed"
        refund.failure_message = result.failure_message
        return refund
    refund.status = "succeeded"
    refund.gateway_reference = result.reference
    invoice = get_invoice(session, refund.invoice_id, for_update=True)
    tax = tax_share(invoice, refund.amount, already=invoice.amount_refunded)
    invoice.amount_refunded += refund.amount
    if invoice.amount_refunded >= invoice.amount_paid:
        invoice.status = "refunded"
    take_back = invoice.status == "refunded" if end_subscription is None else end_subscription
    if take_back:
        _take_back(ctx, session, invoice, now)
    record_event(session, "refund.created", customer_id=invoice.customer_id, now=now, data={
        "refund": refund.id, "invoice": invoice.id, "amount": refund.amount, "tax": tax,
        "currency": refund.currency,
        "reason": refund.reason, "invoice_status": invoice.status})
    return refund


def _take_back(ctx: Context, session: Session, invoice: Invoice, now: datetime) -> None:
    """What a refund removes: the subscription it paid for, or the top-up credits it bought.

    Locks in the order the rest of the engine takes them (subscription, credit account, lots),
    so a concurrent renewal or spend waits instead of deadlocking."""
    if invoice.purpose in SUBSCRIPTION_PURPOSES and invoice.subscription_id:
        sub = session.get(Subscription, invoice.subscription_id, with_for_update=True, populate_existing=True)
        if sub is not None and sub.status in ("active", "past_due"):
            end_sub(ctx, session, sub, now=now, reason="refunded")
    elif invoice.purpose == "top_up":
        take_back_purchase(ctx, session, invoice.customer_id, invoice.id, now)


def unused_value_refund(session: Session, sub: Subscription, now: datetime) -> list[tuple[str, int]]:
    """[(invoice id, amount)] to refund for the unused time of the current term.

    The value of a term can have been paid by more than one invoice (a prorated upgrade charges
    the new price minus the unused credit of the term before), so the refund is drawn from the
    subscription's paid invoices, newest first, until the unused value is covered."""
    unused = split_term(sub.term_price, Period(sub.current_term_start, sub.current_term_end), now).unused
    plan: list[tuple[str, int]] = []
    invoices = list(session.scalars(
        select(Invoice).where(Invoice.subscription_id == sub.id, Invoice.status == "paid",
                              Invoice.purpose.in_(SUBSCRIPTION_PURPOSES))
        .order_by(Invoice.number.desc())
    ))
    # The term's price is before tax where tax was added on top: give back its tax too.
    left = with_tax(invoices[0], unused) if invoices else unused
    for invoice in invoices:
        if left <= 0:
            break
        amount = min(left, refundable_amount(invoice))
        if amount > 0:
            plan.append((invoice.id, amount))
            left -= amount
    return plan


def pending_refunds(session: Session, test_clock_id: str | None, now: datetime, *, limit: int = BATCH) -> list[str]:
    """Pending refunds older than GRACE, of customers on this test clock (or on real time)."""
    clock = Customer.test_clock_id.is_(None) if test_clock_id is None else Customer.test_clock_id == test_clock_id
    return list(session.scalars(
        select(Refund.id).join(Customer, Customer.id == Refund.customer_id)
        .where(Refund.status == "pending", Refund.created_at <= now - GRACE, clock)
        .order_by(Refund.created_at, Refund.id).limit(limit)
    ))


def retry_pending_refunds(ctx: Context, now: datetime, test_clock_id: str | None) -> int:
    """The worker's job: finish the refunds whose gateway answer was lost. If the request that
    created one finishes too, the gateway deduplicates the call and `settle_refund` records it once."""
    with ctx.db.transaction(readonly=True) as session:
        refund_ids = pending_refunds(session, test_clock_id, now)
    finished = 0
    for refund_id in refund_ids:
        try:
            if retry_refund(ctx, refund_id).status != "pending":
                finished += 1
        except CreditflowError as exc:  # still no answer: the next tick asks again
            log.warning("refund %s is still pending: %s", refund_id, exc)
    return finished
