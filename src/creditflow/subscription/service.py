"""Subscription use cases that take no money: cancel at the period end and resume, end, read;
and what a paid or failed first purchase does to the subscription it opened."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditflow.catalog.models import Plan
from creditflow.context import Context
from creditflow.coupon.rules import Target
from creditflow.coupon.service import check_coupon, discount_on, redeem_on_invoice
from creditflow.credits.grants import PlanGrant, expire_plan_credits, renew_plan_credits
from creditflow.customer.billing import bill_to
from creditflow.customer.models import Customer
from creditflow.customer.service import customer_now, get_customer
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import LineDraft, create_invoice
from creditflow.kit.clock import format_instant
from creditflow.kit.errors import Conflict, NotFound
from creditflow.kit.ids import new_id
from creditflow.kit.periods import Term
from creditflow.payment.models import PaymentAttempt
from creditflow.subscription.calendar import current_credit_offset, next_due, set_calendar
from creditflow.subscription.models import Subscription
from creditflow.subscription.options import cancel_refusal, raise_if, resume_refusal
from creditflow.subscription.repository import current_plan_code, get_subscription, live_subscription
from creditflow.subscription.status import record_change


def open_subscription(ctx: Context, session: Session, customer: Customer, plan: Plan, term: Term, now: datetime,
                      coupon: str | None = None) -> tuple[Subscription, Invoice]:
    """An `incomplete` subscription and the invoice for its first term; it starts once paid.
    A coupon discounts the first charge, and is redeemed with the invoice it discounts."""
    if live_subscription(session, customer.id, include_incomplete=True) is not None:
        raise Conflict("the customer already has a subscription", code="subscription_exists", param="customer")
    plan = ctx.catalog.plan_for_sale(plan.code)  # a plan taken off sale keeps its subscribers only
    price = plan.price(term)
    sub = Subscription(
        id=new_id("sub"), customer_id=customer.id, test_clock_id=customer.test_clock_id,
        plan=plan.code, term=term.value, term_price=price, price=price, status="incomplete", anchor=now,
        cancel_at_period_end=False, retry_count=0, version=0, created_at=now, updated_at=now,
    )
    set_calendar(sub, term_start_offset=0, credit_offset=0)
    session.add(sub)
    try:
        session.flush()
    except IntegrityError:  # a concurrent purchase holds the one live slot
        raise Conflict("the customer already has a subscription", code="subscription_exists",
                       param="customer") from None
    target = Target(plan=plan.code, term=term.value)
    found = check_coupon(session, coupon, target, now) if coupon is not None else None
    discount = discount_on(found, price, new=True) if found is not None else None
    invoice = create_invoice(
        session, ctx.catalog, customer_id=customer.id, purpose="subscription_create",
        discount=discount.amount if discount else 0, discount_description=discount and discount.description,
        subscription_id=sub.id, now=now, bill_to=bill_to(customer), period_start=sub.current_term_start,
        period_end=sub.current_term_end, dedupe_key=f"subscribe:{sub.id}",
        details={"subscription": sub.id, "plan": plan.code, "term": term.value},
        lines=[LineDraft("subscription", f"{plan.name} plan, {term.value}", price,
                         sub.current_term_start, sub.current_term_end)],
    )
    sub.pending_invoice_id = invoice.id
    if found is not None:
        redeem_on_invoice(session, found, discount, invoice, applied_to="subscribe", target=target, now=now)
        sub.term_price = price - invoice.discount  # what the term was bought for (its unused value)
    return sub, invoice


def on_subscribe_paid(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
                      now: datetime) -> None:
    """The first term is paid: the subscription starts, with its first month of credits."""
    sub = session.get(Subscription, invoice.details["subscription"], with_for_update=True, populate_existing=True)
    if sub is None or sub.status != "incomplete":
        return
    sub.pending_invoice_id = None
    set_calendar(sub, term_start_offset=0, credit_offset=current_credit_offset(sub, now))
    grant_plan_credits(ctx, session, [sub], now)
    record_change(ctx, session, sub, now=now, status="active", event="subscription.created", data={
        "subscription": sub.id, "plan": sub.plan, "term": sub.term, "invoice": invoice.id})
    sub.due_at = next_due(sub)


def on_subscribe_failed(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
                        now: datetime) -> None:
    """Nothing starts: the incomplete subscription is removed; the void invoice remains."""
    invoice.status = "void"
    sub = session.get(Subscription, invoice.details["subscription"], with_for_update=True, populate_existing=True)
    if sub is not None and sub.status == "incomplete":
        invoice.subscription_id = None
        session.delete(sub)


def cancel_at_period_end(ctx: Context, session: Session, sub: Subscription, now: datetime) -> None:
    """The subscription ends with its term; a scheduled downgrade is dropped with it."""
    raise_if(cancel_refusal(sub))
    if sub.scheduled_kind == "downgrade":
        drop_scheduled_change(ctx, session, sub, now, reason="subscription_canceled")
    if not sub.cancel_at_period_end:
        sub.cancel_at_period_end = True
        sub.canceled_at = now
        record_change(ctx, session, sub, now=now, event="subscription.canceled", data={
            "subscription": sub.id, "ends_at": format_instant(sub.current_term_end)})


def resume_subscription(ctx: Context, session: Session, subscription_id: str) -> Subscription:
    """Undo a cancellation before the term ends."""
    sub = get_subscription(session, subscription_id, for_update=True)
    now = customer_now(ctx, session, sub.customer_id)
    raise_if(resume_refusal(sub, now))
    sub.cancel_at_period_end = False
    sub.canceled_at = None
    record_change(ctx, session, sub, now=now, event="subscription.resumed", data={"subscription": sub.id})
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


def end_subscription(ctx: Context, session: Session, sub: Subscription, *, now: datetime, reason: str,
                     at: datetime | None = None) -> None:
    """The customer is back on Free: plan credits expire, nothing more is charged."""
    if sub.pending_invoice_id is not None:  # a renewal left unpaid is no longer owed
        pending = session.get(Invoice, sub.pending_invoice_id, with_for_update=True)
        if pending is not None and pending.status == "open":
            pending.status = "void"
    sub.ended_at = at or now
    sub.ended_reason = reason
    sub.scheduled_plan = sub.scheduled_term = sub.scheduled_kind = sub.scheduled_price = None
    sub.next_retry_at = None
    sub.pending_invoice_id = None
    sub.due_at = None
    sub.lease_owner = None
    expire_plan_credits(ctx, session, sub.customer_id, sub.id, now)
    record_change(ctx, session, sub, now=now, status="ended", event="subscription.ended",
                  data={"subscription": sub.id, "reason": reason})


def grant_plan_credits(ctx: Context, session: Session, subs: list[Subscription], now: datetime) -> None:
    """Each subscription's plan credits set to the allotment of its current credit month
    (last month's expire: no rollover)."""
    renew_plan_credits(ctx, session, [
        PlanGrant(sub.customer_id, sub.id, ctx.catalog.plan(sub.plan).monthly_credits, sub.credit_period_end,
                  f"sub:{sub.id}:{format_instant(sub.credit_period_start)}")
        for sub in subs], now)


def drop_scheduled_change(ctx: Context, session: Session, sub: Subscription, now: datetime, *, reason: str) -> None:
    data = {"subscription": sub.id, "plan": sub.scheduled_plan, "term": sub.scheduled_term,
            "kind": sub.scheduled_kind, "reason": reason}
    sub.scheduled_plan = sub.scheduled_term = sub.scheduled_kind = sub.scheduled_price = None
    record_change(ctx, session, sub, now=now, event="subscription.change_canceled", data=data)
