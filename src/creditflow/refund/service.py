"""Refunds (SPEC M1, X4, D2): money back through the gateway, and what a refund takes away.

Like a charge, a refund is committed as `pending` before the gateway is called, called outside
any transaction with the refund id as idempotency key, and its effect committed with the
outcome: refunding a subscription charge ends that subscription and removes its remaining plan
credits; refunding a top-up removes the unspent credits of its lot.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditflow.credits.grants import expire_lot, lock_account
from creditflow.credits.models import CreditEntry, CreditLot
from creditflow.events.outbox import record_event
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import get_invoice
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, InvalidRequest, NotFound, PaymentFailed
from creditflow.kit.ids import new_id
from creditflow.payment.models import PaymentAttempt
from creditflow.refund.models import Refund
from creditflow.refund.policy import Eligibility, refund_eligibility
from creditflow.subscription.models import Subscription

SUBSCRIPTION_PURPOSES = ("subscription_create", "renewal", "plan_change")
MAX_REASON = 500  # the column's length


def credits_spent_since(session: Session, customer_id: str, since: datetime) -> Credits:
    """Credits consumed by spends and settled holds since an instant, net of the refunds of those
    spends (a refund of a spend made before `since` gives nothing back to this count)."""
    consumed = (CreditEntry.customer_id == customer_id) & (CreditEntry.created_at >= since)
    spent = session.scalar(select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
        consumed, CreditEntry.kind.in_(("spend", "settle"))))
    references_since = select(CreditEntry.reference).where(consumed, CreditEntry.kind.in_(("spend", "settle")))
    returned = session.scalar(select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
        CreditEntry.customer_id == customer_id, CreditEntry.kind == "refund",
        CreditEntry.reference.in_(references_since)))
    return Credits(max(0, _milli(spent) - _milli(returned)))


def _milli(value) -> int:
    return value.milli if isinstance(value, Credits) else int(value)


def eligibility(ctx, invoice_id: str) -> Eligibility:
    with ctx.db.transaction(readonly=True) as session:
        invoice = get_invoice(session, invoice_id)
        now = ctx.now_for(session, invoice.customer_id)
        return _eligibility(ctx, session, invoice, now)


def _eligibility(ctx, session: Session, invoice: Invoice, now: datetime) -> Eligibility:
    earlier = session.scalar(
        select(func.count()).select_from(Invoice).where(
            Invoice.customer_id == invoice.customer_id, Invoice.purpose == "subscription_create",
            Invoice.status.in_(("paid", "refunded")), Invoice.number < invoice.number)
    )
    return refund_eligibility(
        ctx.catalog.policies.refund, purpose=invoice.purpose, status=invoice.status,
        term=invoice.details.get("term"), first_purchase=earlier == 0, paid_at=invoice.paid_at,
        credits_spent_since=(credits_spent_since(session, invoice.customer_id, invoice.paid_at)
                             if invoice.paid_at else Credits(0)),
        now=now,
    )


def refundable_amount(invoice: Invoice) -> int:
    return invoice.amount_paid - invoice.amount_refunded


def create_refund(ctx, invoice_id: str, *, reason: str, amount: int | None = None, actor: str | None = None,
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
        now = ctx.now_for(session, invoice.customer_id)
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


def retry_refund(ctx, refund_id: str) -> Refund:
    """Finish a refund left `pending` (the gateway's answer was lost): ask again with the same
    idempotency key, so the gateway pays out once, and take back what the first request said
    to. A settled refund is returned as it is. The worker does this by itself (`refund.jobs`)."""
    with ctx.db.transaction(readonly=True) as session:
        refund = session.get(Refund, refund_id)
        if refund is None:
            raise NotFound(f"no such refund: {refund_id}", param="refund")
        if refund.status != "pending":
            return refund
        charge_reference = _charge_reference(session, refund.invoice_id)
        now = ctx.now_for(session, refund.customer_id)
        amount, takes_back = refund.amount, refund.takes_back
    return _send(ctx, refund_id, charge_reference, amount, now, takes_back)


def _send(ctx, refund_id: str, charge_reference: str, amount: int, now: datetime,
          end_subscription: bool | None) -> Refund:
    """Call the gateway outside any transaction, then record the outcome (SPEC P3)."""
    try:
        result = ctx.gateway.refund(reference=charge_reference, amount=amount, idempotency_key=refund_id)
    except Exception as exc:  # the refund stays pending; retry_refund uses the same key
        raise PaymentFailed(f"The refund could not be confirmed ({exc}); retry it.", code="refund_pending") from exc

    def record(session: Session) -> Refund:
        return settle_refund(ctx, session, refund_id, result, now, end_subscription=end_subscription)

    refund = ctx.db.run(record)
    if refund.status == "failed":
        raise PaymentFailed(refund.failure_message or "The refund failed.", code="refund_failed")
    return refund


def _charge_reference(session: Session, invoice_id: str) -> str | None:
    return session.scalar(select(PaymentAttempt.gateway_reference).where(
        PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.status == "succeeded"))


def settle_refund(ctx, session: Session, refund_id: str, result, now: datetime, *,
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
    invoice.amount_refunded += refund.amount
    if invoice.amount_refunded >= invoice.amount_paid:
        invoice.status = "refunded"
    take_back = invoice.status == "refunded" if end_subscription is None else end_subscription
    if take_back:
        _take_back(ctx, session, invoice, now)
    record_event(session, "refund.created", customer_id=invoice.customer_id, now=now, data={
        "refund": refund.id, "invoice": invoice.id, "amount": refund.amount, "currency": refund.currency,
        "reason": refund.reason, "invoice_status": invoice.status})
    return refund


def _take_back(ctx, session: Session, invoice: Invoice, now: datetime) -> None:
    """What a refund removes: the subscription it paid for, or the top-up credits it bought.

    Locks in the order the rest of the engine takes them (subscription, credit account, lots),
    so a concurrent renewal or spend waits instead of deadlocking."""
    from creditflow.subscription.service import end_subscription as end_sub

    if invoice.purpose in SUBSCRIPTION_PURPOSES and invoice.subscription_id:
        sub = session.get(Subscription, invoice.subscription_id, with_for_update=True, populate_existing=True)
        if sub is not None and sub.status in ("active", "past_due"):
            lock_account(session, invoice.customer_id)
            end_sub(session, sub, now=now, reason="refunded")
    elif invoice.purpose == "top_up":
        account = lock_account(session, invoice.customer_id)
        for lot in session.scalars(select(CreditLot).where(CreditLot.invoice_id == invoice.id).with_for_update()):
            # With the account passed in, expire_lot runs no query (no autoflush) between emptying
            # the lot and marking it expired.
            expire_lot(session, lot, now=now, account=account)


def latest_term_invoice(session: Session, subscription_id: str) -> Invoice | None:
    """The paid invoice that bought the subscription's current term."""
    return session.scalar(
        select(Invoice).where(Invoice.subscription_id == subscription_id, Invoice.status == "paid",
                              Invoice.purpose.in_(SUBSCRIPTION_PURPOSES))
        .order_by(Invoice.number.desc()).limit(1)
    )


def unused_value_refund(session: Session, sub: Subscription, now: datetime) -> list[tuple[str, int]]:
    """[(invoice id, amount)] to refund for the unused time of the current term.

    The value of a term can have been paid by more than one invoice (a prorated upgrade charges
    the new price minus the unused credit of the term before), so the refund is drawn from the
    subscription's paid invoices, newest first, until the unused value is covered."""
    from creditflow.kit.periods import Period
    from creditflow.subscription.proration import split_term

    left = split_term(sub.term_price, Period(sub.current_term_start, sub.current_term_end), now).unused
    plan: list[tuple[str, int]] = []
    invoices = session.scalars(
        select(Invoice).where(Invoice.subscription_id == sub.id, Invoice.status == "paid",
                              Invoice.purpose.in_(SUBSCRIPTION_PURPOSES))
        .order_by(Invoice.number.desc())
    )
    for invoice in invoices:
        if left <= 0:
            break
        amount = min(left, refundable_amount(invoice))
        if amount > 0:
            plan.append((invoice.id, amount))
            left -= amount
    return plan
