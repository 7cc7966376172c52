"""A subscription's due work, as the rules decide it: the monthly grant, the end of a
cancelled term, the renewal invoice (with any scheduled change applied first), and what a paid
or declined renewal does (the next term, or dunning). The worker runs it through
`purchase.renewal`, which calls the gateway between these steps."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from creditflow.context import Context
from creditflow.coupon.rules import Target
from creditflow.coupon.service import carried_discount, note_on_invoice
from creditflow.credits.grants import expire_plan_credits
from creditflow.customer.billing import bill_to
from creditflow.customer.service import get_customer
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import LineDraft, create_invoice
from creditflow.kit.clock import format_instant
from creditflow.kit.periods import Term, month_boundary
from creditflow.payment.models import PaymentAttempt
from creditflow.subscription.calendar import LEASE, current_credit_offset, next_due, set_calendar
from creditflow.subscription.models import Subscription
from creditflow.subscription.price import apply_scheduled_price, charge_term_from
from creditflow.subscription.service import end_subscription, grant_plan_credits
from creditflow.subscription.status import record_change


def release(sub: Subscription) -> None:
    """Nothing more to do now: due again when the calendar says, by any worker."""
    sub.due_at = next_due(sub)
    sub.lease_owner = None


def grant_next_month(ctx: Context, session: Session, sub: Subscription, now: datetime) -> None:
    """A new credit month inside the term: its plan credits replace the last month's."""
    set_calendar(sub, term_start_offset=sub.term_start_offset, credit_offset=sub.credit_offset + 1)
    grant_plan_credits(ctx, session, [sub], now)
    sub.updated_at = now
    release(sub)


def end_cancelled_term(ctx: Context, session: Session, sub: Subscription, now: datetime) -> None:
    end_subscription(ctx, session, sub, now=now, reason="canceled", at=sub.current_term_end)


def open_renewal(ctx: Context, session: Session, sub: Subscription, now: datetime) -> Invoice:
    """Apply any scheduled change, then invoice the next term at the price that applies; the
    subscription stays leased while the invoice is collected."""
    if sub.scheduled_plan is not None:
        before = {"plan": sub.plan, "term": sub.term}
        sub.plan, sub.term = sub.scheduled_plan, sub.scheduled_term
        kind = sub.scheduled_kind
        sub.scheduled_plan = sub.scheduled_term = sub.scheduled_kind = None
        apply_scheduled_price(sub)
        record_change(ctx, session, sub, now=now, event="subscription.changed", data={
            "subscription": sub.id, "from": before, "to": {"plan": sub.plan, "term": sub.term},
            "kind": kind, "timing": "end_of_period"})
    plan = ctx.catalog.plan(sub.plan)
    term = Term(sub.term)
    start_offset = sub.term_end_offset
    period_start = month_boundary(sub.anchor, start_offset)
    period_end = month_boundary(sub.anchor, start_offset + term.months)
    amount = charge_term_from(sub, ctx.catalog, period_start)  # as sold, not the catalog's price today
    # The subscription's coupon, while it has periods left (one used up is removed here).
    discount = carried_discount(session, sub.id, Target(plan=plan.code, term=term.value), amount,
                                next_term=True)
    invoice = create_invoice(
        session, ctx.catalog, customer_id=sub.customer_id, purpose="renewal",
        discount=discount.amount if discount else 0, discount_description=discount and discount.description,
        subscription_id=sub.id, now=now, bill_to=bill_to(get_customer(session, sub.customer_id)),
        period_start=period_start, period_end=period_end,
        dedupe_key=f"renewal:{sub.id}:{sub.anchor.isoformat()}:{start_offset}",
        details={"subscription": sub.id, "plan": sub.plan, "term": sub.term, "term_start_offset": start_offset},
        lines=[LineDraft("subscription", f"{plan.name} plan, {term.value}", amount,
                         period_start, period_end)],
    )
    note_on_invoice(invoice, discount)
    sub.pending_invoice_id = invoice.id
    sub.due_at = now + LEASE
    sub.updated_at = now
    return invoice


def _lock_subscription(session: Session, subscription_id: str) -> Subscription | None:
    """Lock the row and read it fresh, without dropping changes this unit of work already made
    to it (when the account balance pays a renewal, this runs in the transaction that opened
    it): those are flushed first, autoflush or not."""
    held = session.identity_map.get(identity_key(Subscription, subscription_id))
    if held is not None and held in session.dirty:
        session.flush()
    return session.get(Subscription, subscription_id, with_for_update=True, populate_existing=True)


def on_renewal_paid(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
                    now: datetime) -> None:
    """The next term starts, with its first month of plan credits (also after dunning)."""
    # Nothing here reads back what it wrote, and no row it locks has pending changes: one
    # flush at commit instead of one before every locking read (the worker's hot path).
    with session.no_autoflush:
        sub = _lock_subscription(session, invoice.subscription_id)
        if sub is None or sub.status == "ended":
            return
        details = invoice.details
        was_past_due = sub.status == "past_due"
        sub.plan, sub.term = details["plan"], details["term"]
        sub.term_price = invoice.subtotal - invoice.discount
        start = details["term_start_offset"]
        set_calendar(sub, term_start_offset=start, credit_offset=start)
        set_calendar(sub, term_start_offset=start, credit_offset=current_credit_offset(sub, now))
        sub.past_due_since = sub.next_retry_at = None
        sub.retry_count = 0
        sub.pending_invoice_id = None
        grant_plan_credits(ctx, session, [sub], now)
        record_change(ctx, session, sub, now=now, status="active", event="subscription.renewed", data={
            "subscription": sub.id, "invoice": invoice.id, "plan": sub.plan, "term": sub.term,
            "current_term_start": format_instant(sub.current_term_start),
            "current_term_end": format_instant(sub.current_term_end), "after_dunning": was_past_due})
        release(sub)


def on_renewal_failed(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt,
                      now: datetime) -> None:
    """Dunning: past_due with no new credits, retried on the catalog's schedule, then Free."""
    sub = _lock_subscription(session, invoice.subscription_id)
    if sub is None or sub.status == "ended":
        invoice.status = "void"
        return
    if attempt.failure_code == "not_charged":
        # The gateway never saw this charge (a worker stopped between committing the attempt
        # and calling it): not a decline. No dunning; the invoice stays open and is charged
        # again at once with a new attempt.
        sub.updated_at = now
        sub.lease_owner = None
        sub.due_at = now
        return
    retry_days = ctx.catalog.policies.dunning_retry_days
    if sub.status == "active":
        sub.past_due_since = now
        sub.retry_count = 0
        expire_plan_credits(ctx, session, sub.customer_id, sub.id, now)
        record_change(ctx, session, sub, now=now, status="past_due", event="subscription.past_due", data={
            "subscription": sub.id, "invoice": invoice.id, "failure_code": attempt.failure_code})
    elif now < sub.past_due_since + timedelta(days=retry_days[sub.retry_count]):
        # A retry ahead of the schedule (the customer set a new payment method): the schedule
        # stands, counted from the first failure, and this retry doesn't use one of its tries.
        sub.next_retry_at = sub.past_due_since + timedelta(days=retry_days[sub.retry_count])
        release(sub)
        return
    else:
        sub.retry_count += 1
    if sub.retry_count < len(retry_days):
        sub.next_retry_at = sub.past_due_since + timedelta(days=retry_days[sub.retry_count])
        if sub.status == "past_due" and sub.retry_count > 0:
            record_change(ctx, session, sub, now=now)
        release(sub)
    else:
        invoice.status = "void"
        end_subscription(ctx, session, sub, now=now, reason="payment_failed")
