"""Subscription use cases: subscribe (S1), cancel and resume (X1-X3), and what a paid or failed
first purchase leads to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditflow.credits.grants import expire_lot, expire_subscription_lots, grant_credits, lock_account
from creditflow.credits.models import CreditLot
from creditflow.customer.service import get_customer
from creditflow.events.outbox import record_event
from creditflow.invoicing.service import LineDraft, create_invoice
from creditflow.kit.errors import Conflict, NotFound, PaymentFailed
from creditflow.kit.ids import new_id
from creditflow.kit.periods import Term, month_index_at
from creditflow.payment import fulfilment
from creditflow.payment.service import begin_collection, collect
from creditflow.subscription.lifecycle import next_due, set_calendar
from creditflow.subscription.models import Subscription
from creditflow.subscription.repository import current_plan_code, get_subscription, live_subscription


def subscribe(ctx, customer_id: str, plan: str, term: str) -> Subscription:
    """Charge the plan's price for the term; start the subscription only if it succeeded (S1)."""
    plan_def = ctx.catalog.plan(plan)
    term_def = ctx.catalog.term(term)
    price = plan_def.price(term_def)

    def open_purchase(session: Session):
        customer = get_customer(session, customer_id, for_update=True)
        now = ctx.now_for(session, customer_id)
        if live_subscription(session, customer_id, include_incomplete=True) is not None:
            raise Conflict("the customer already has a subscription", code="subscription_exists",
                           param="customer")
        sub = Subscription(
            id=new_id("sub"), customer_id=customer_id, test_clock_id=customer.test_clock_id,
            plan=plan_def.code, term=term_def.value, term_price=price, status="incomplete", anchor=now,
            cancel_at_period_end=False, retry_count=0, version=0, created_at=now, updated_at=now,
        )
        set_calendar(sub, term_start_offset=0, credit_offset=0)
        session.add(sub)
        try:
            session.flush()
        except IntegrityError:  # a concurrent purchase holds the one live slot
            raise Conflict("the customer already has a subscription", code="subscription_exists",
                           param="customer") from None
        invoice = create_invoice(
            session, customer_id=customer_id, currency=customer.currency, purpose="subscription_create",
            subscription_id=sub.id, now=now, period_start=sub.current_term_start,
            period_end=sub.current_term_end, dedupe_key=f"subscribe:{sub.id}",
            details={"subscription": sub.id, "plan": plan_def.code, "term": term_def.value},
            lines=[LineDraft("subscription", f"{plan_def.name} plan, {term_def.value}", price,
                             sub.current_term_start, sub.current_term_end)],
        )
        sub.pending_invoice_id = invoice.id
        return sub.id, invoice.id, now, begin_collection(ctx, session, invoice, now)

    with ctx.db.transaction() as session:
        sub_id, invoice_id, now, begin = open_purchase(session)
    outcome = collect(ctx, invoice_id, now, begin)
    if outcome.status == "failed":
        raise PaymentFailed(outcome.failure_message or "The payment failed.", code="payment_failed")
    if outcome.status == "unknown":
        raise PaymentFailed(
            "The payment's outcome is unknown; it will be reconciled and the subscription started "
            "if the charge went through. Nothing will be charged twice.", code="payment_pending")
    with ctx.db.transaction(readonly=True) as session:
        return get_subscription(session, sub_id)


def cancel_subscription(ctx, subscription_id: str, *, at_period_end: bool = True, refund: str = "none",
                        support: bool = False, reason: str | None = None, actor: str | None = None) -> Subscription:
    """Cancel at the end of the term (X1); support may end it at once, with a refund of the
    unused time or none (X4)."""
    from creditflow.kit.errors import Forbidden, InvalidRequest
    from creditflow.refund.service import create_refund, unused_value_refund

    if refund not in ("none", "prorated"):
        raise InvalidRequest("refund must be none or prorated", param="refund")
    if not at_period_end and not support:
        raise Forbidden("ending a subscription at once is a support action", code="support_only",
                        param="at_period_end")
    if refund != "none" and at_period_end:
        raise InvalidRequest("a refund only goes with ending the subscription at once", param="refund")
    to_refund: list[tuple[str, int]] = []
    with ctx.db.transaction() as session:
        sub = get_subscription(session, subscription_id, for_update=True)
        now = ctx.now_for(session, sub.customer_id)
        if sub.status == "ended":
            raise Conflict("the subscription has ended", code="subscription_ended")
        if not at_period_end:
            if refund == "prorated":
                to_refund = unused_value_refund(session, sub, now)
            end_subscription(session, sub, now=now, reason="canceled_by_support")
        else:
            if sub.status != "active":
                raise Conflict("only an active subscription can be cancelled at the period end",
                               code="subscription_not_active")
            if sub.scheduled_kind == "upgrade":
                raise Conflict(
                    "An upgrade is scheduled for the end of the period; cancel the scheduled change first.",
                    code="scheduled_upgrade_pending")
            if sub.scheduled_kind == "downgrade":  # X2
                _drop_scheduled_change(session, sub, now, reason="subscription_canceled")
            if not sub.cancel_at_period_end:
                sub.cancel_at_period_end = True
                sub.canceled_at = now
                sub.version += 1
                sub.updated_at = now
                record_event(session, "subscription.canceled", customer_id=sub.customer_id, now=now, data={
                    "subscription": sub.id, "ends_at": sub.current_term_end.isoformat()})
    for invoice_id, amount in to_refund:
        # The subscription has ended already; the refund gives back the unused time only.
        create_refund(ctx, invoice_id, amount=amount, reason=reason or "ended by support",
                      actor=actor, end_subscription=False)
    with ctx.db.transaction(readonly=True) as session:
        return session.get(Subscription, subscription_id)


def resume_subscription(ctx, subscription_id: str) -> Subscription:
    """Undo a cancellation before the term ends (X3)."""
    with ctx.db.transaction() as session:
        sub = get_subscription(session, subscription_id, for_update=True)
        now = ctx.now_for(session, sub.customer_id)
        if sub.status == "ended" or (sub.cancel_at_period_end and now >= sub.current_term_end):
            # Over, even if the worker hasn't ended it yet: resume only undoes a pending end (X3).
            raise Conflict("the subscription has ended", code="subscription_ended")
        if not sub.cancel_at_period_end:
            raise Conflict("the subscription is not set to cancel", code="not_cancelling")
        sub.cancel_at_period_end = False
        sub.canceled_at = None
        sub.version += 1
        sub.updated_at = now
        record_event(session, "subscription.resumed", customer_id=sub.customer_id, now=now,
                     data={"subscription": sub.id})
        return sub


def read_subscription(session: Session, subscription_id: str) -> Subscription:
    return get_subscription(session, subscription_id)


def customer_subscription(session: Session, customer_id: str) -> Subscription:
    """The customer's live subscription (active or past_due), or NotFound."""
    get_customer(session, customer_id)
    sub = live_subscription(session, customer_id)
    if sub is None:
        raise NotFound(f"customer {customer_id} has no subscription", param="customer")
    return sub


def customer_plan(session: Session, customer_id: str) -> str:
    """The plan code the customer is on: their active subscription's, or `free`."""
    return current_plan_code(session, customer_id)


def end_subscription(session: Session, sub: Subscription, *, now: datetime, reason: str,
                     at: datetime | None = None) -> None:
    """The customer is back on Free: plan credits expire, nothing more is charged."""
    if sub.pending_invoice_id is not None:  # a renewal left unpaid is no longer owed
        from creditflow.invoicing.models import Invoice

        pending = session.get(Invoice, sub.pending_invoice_id, with_for_update=True)
        if pending is not None and pending.status == "open":
            pending.status = "void"
    sub.status = "ended"
    sub.ended_at = at or now
    sub.ended_reason = reason
    sub.scheduled_plan = sub.scheduled_term = sub.scheduled_kind = None
    sub.next_retry_at = None
    sub.pending_invoice_id = None
    sub.due_at = None
    sub.lease_owner = None
    sub.version += 1
    sub.updated_at = now
    expire_subscription_lots(session, sub.id, sub.customer_id, now=now)
    record_event(session, "subscription.ended", customer_id=sub.customer_id, now=now,
                 data={"subscription": sub.id, "reason": reason})


def grant_plan_credits(ctx, session: Session, sub: Subscription, now: datetime) -> None:
    """Set the plan credits to the allotment for the current credit month (S2, S3: no rollover)."""
    # The account is locked once, before the lots, as spends do; the expiry and the grant
    # both move its totals.
    account = lock_account(session, sub.customer_id)
    live_lots = session.scalars(select(CreditLot).where(
        CreditLot.subscription_id == sub.id, CreditLot.kind == "subscription", CreditLot.expired_at.is_(None),
    ).with_for_update()).all()
    for lot in live_lots:
        expire_lot(session, lot, now=now, account=account)
    plan = ctx.catalog.plan(sub.plan)
    grant_credits(
        session, customer_id=sub.customer_id, kind="subscription", amount=plan.monthly_credits, now=now,
        expires_at=sub.credit_period_end, subscription_id=sub.id,
        grant_key=f"sub:{sub.id}:{sub.credit_period_start.isoformat()}", account=account,
    )


def current_credit_offset(sub: Subscription, now: datetime) -> int:
    """The credit month containing `now`, kept inside the current term."""
    k = month_index_at(sub.anchor, now)
    return max(sub.term_start_offset, min(k, sub.term_end_offset - 1))


def _drop_scheduled_change(session: Session, sub: Subscription, now: datetime, *, reason: str) -> None:
    record_event(session, "subscription.change_canceled", customer_id=sub.customer_id, now=now, data={
        "subscription": sub.id, "plan": sub.scheduled_plan, "term": sub.scheduled_term,
        "kind": sub.scheduled_kind, "reason": reason})
    sub.scheduled_plan = sub.scheduled_term = sub.scheduled_kind = None
    sub.version += 1


def _on_subscribe_paid(ctx, session: Session, invoice, attempt, now: datetime) -> None:
    sub = session.get(Subscription, invoice.details["subscription"], with_for_update=True, populate_existing=True)
    if sub is None or sub.status != "incomplete":
        return
    sub.status = "active"
    sub.pending_invoice_id = None
    set_calendar(sub, term_start_offset=0, credit_offset=current_credit_offset(sub, now))
    grant_plan_credits(ctx, session, sub, now)
    sub.due_at = next_due(sub)
    sub.updated_at = now
    record_event(session, "subscription.created", customer_id=sub.customer_id, now=now, data={
        "subscription": sub.id, "plan": sub.plan, "term": sub.term, "invoice": invoice.id})


def _on_subscribe_failed(ctx, session: Session, invoice, attempt, now: datetime) -> None:
    """Nothing starts (S1): the incomplete subscription is removed; the void invoice remains."""
    invoice.status = "void"
    sub = session.get(Subscription, invoice.details["subscription"], with_for_update=True, populate_existing=True)
    if sub is not None and sub.status == "incomplete":
        invoice.subscription_id = None
        session.delete(sub)


fulfilment.register("subscription_create", on_paid=_on_subscribe_paid, on_failed=_on_subscribe_failed)

# Renewal handlers live with the renewal use case.
import creditflow.subscription.renewal  # noqa: E402,F401
