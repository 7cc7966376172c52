"""Due work on one subscription: monthly grants (S2, S3), renewals (S4), the end of a
cancelled term (X1) and dunning retries (S5).

`run_due` takes one step at a time. A step that needs the gateway commits first (the
subscription leased to this worker, the attempt pending), calls the gateway outside any
transaction, then records the outcome (SPEC P3). The worker renews the usual case a group
at a time instead (renewal_batch.py), by the same rules, and hands everything else to `run_due`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from creditflow.events.outbox import record_event
from creditflow.invoicing.service import LineDraft, create_invoice, get_invoice
from creditflow.kit.periods import Term, month_boundary
from creditflow.payment import fulfilment
from creditflow.payment.models import PaymentAttempt
from creditflow.payment.service import (STALE_PENDING, Outcome, Ticket, begin_collection, call_gateway,
                                        reconcile_attempt, settle_attempt)
from creditflow.subscription.lifecycle import LEASE, monthly_grant_due, next_due, set_calendar, term_end_due
from creditflow.subscription.models import Subscription
from creditflow.subscription.service import current_credit_offset, end_subscription, grant_plan_credits

MAX_STEPS = 100


def run_due(ctx, subscription_id: str, now: datetime, *, owner: str | None = None) -> int:
    """Run every step due on the subscription at `now`; returns how many ran."""
    steps = 0
    while steps < MAX_STEPS:
        action = ctx.db.run(lambda session: _next_step(ctx, session, subscription_id, now, owner))
        if action is None:
            return steps
        steps += 1
        if isinstance(action, Ticket):
            result = call_gateway(ctx, action)
            outcome, settled = ctx.db.run(lambda session: settle_charge(ctx, session, subscription_id, action, result, now))
            if outcome.status == "unknown":
                return steps  # the lease expires and a later visit reconciles it
            if settled:
                return steps
        elif isinstance(action, tuple) and action[0] == "reconcile":
            if reconcile_attempt(ctx, action[1], now).status == "unknown":
                return steps
    return steps


def settle_charge(ctx, session: Session, subscription_id: str, ticket: Ticket, result, now: datetime):
    """Record the gateway's answer. Also says whether the subscription is now released with
    nothing due at `now`, in which case the next step would find nothing to do (saves a
    transaction per renewal)."""
    outcome = settle_attempt(ctx, session, ticket.attempt_id, result, now)
    sub = session.get(Subscription, subscription_id)  # in the identity map after the handler ran
    settled = sub is None or (sub.lease_owner is None and (sub.due_at is None or sub.due_at > now))
    return outcome, settled


def _next_step(ctx, session: Session, subscription_id: str, now: datetime, owner: str | None):
    sub = session.get(Subscription, subscription_id, with_for_update=True, populate_existing=True)
    if sub is None or sub.status in ("incomplete", "ended"):
        return None
    if owner is not None and sub.lease_owner not in (None, owner):
        return None  # another worker holds it

    if sub.pending_invoice_id is not None:  # a renewal charge is in flight or in dunning
        if sub.status == "past_due" and sub.next_retry_at > now:
            return _release(sub)
        sub.due_at = now + LEASE
        unsettled = session.execute(
            select(PaymentAttempt.id, PaymentAttempt.status, PaymentAttempt.created_at).where(
                PaymentAttempt.invoice_id == sub.pending_invoice_id,
                PaymentAttempt.status.in_(("pending", "unknown")),
            ).limit(1)
        ).first()
        if unsettled is not None:
            if unsettled.status == "pending" and unsettled.created_at > now - STALE_PENDING:
                # Its worker may still be waiting on the gateway (the lease is shorter than
                # that): deciding "never charged" now could let dunning charge a second time.
                sub.due_at = unsettled.created_at + STALE_PENDING
                return None
            return ("reconcile", unsettled.id)
        invoice = get_invoice(session, sub.pending_invoice_id, for_update=True)
        return _charge(ctx, session, invoice, now)

    if monthly_grant_due(sub, now):
        set_calendar(sub, term_start_offset=sub.term_start_offset, credit_offset=sub.credit_offset + 1)
        grant_plan_credits(ctx, session, sub, now)
        sub.updated_at = now
        _release(sub)
        return "granted"

    if term_end_due(sub, now):
        if sub.cancel_at_period_end:
            end_subscription(session, sub, now=now, reason="canceled", at=sub.current_term_end)
            return "ended"
        return _start_renewal(ctx, session, sub, now)

    return _release(sub)


def _release(sub: Subscription) -> None:
    sub.due_at = next_due(sub)
    sub.lease_owner = None
    return None


def _charge(ctx, session: Session, invoice, now: datetime) -> Ticket | str:
    begin = begin_collection(ctx, session, invoice, now)
    return begin if isinstance(begin, Ticket) else "settled"


def _start_renewal(ctx, session: Session, sub: Subscription, now: datetime):
    """Apply any scheduled change, then invoice the next term at the price that applies (S4)."""
    if sub.scheduled_plan is not None:
        before = {"plan": sub.plan, "term": sub.term}
        sub.plan, sub.term = sub.scheduled_plan, sub.scheduled_term
        kind = sub.scheduled_kind
        sub.scheduled_plan = sub.scheduled_term = sub.scheduled_kind = None
        sub.version += 1
        record_event(session, "subscription.changed", customer_id=sub.customer_id, now=now, data={
            "subscription": sub.id, "from": before, "to": {"plan": sub.plan, "term": sub.term},
            "kind": kind, "timing": "end_of_period"})
    plan = ctx.catalog.plan(sub.plan)
    term = Term(sub.term)
    start_offset = sub.term_end_offset
    period_start = month_boundary(sub.anchor, start_offset)
    period_end = month_boundary(sub.anchor, start_offset + term.months)
    invoice = create_invoice(
        session, customer_id=sub.customer_id, currency=ctx.catalog.currency, purpose="renewal",
        subscription_id=sub.id, now=now, period_start=period_start, period_end=period_end,
        dedupe_key=f"renewal:{sub.id}:{sub.anchor.isoformat()}:{start_offset}",
        details={"subscription": sub.id, "plan": sub.plan, "term": sub.term, "term_start_offset": start_offset},
        lines=[LineDraft("subscription", f"{plan.name} plan, {term.value}", plan.price(term),
                         period_start, period_end)],
    )
    sub.pending_invoice_id = invoice.id
    sub.due_at = now + LEASE
    sub.updated_at = now
    return _charge(ctx, session, invoice, now)


def _lock_subscription(session: Session, subscription_id: str) -> Subscription | None:
    """Lock the row and read it fresh, without dropping changes this unit of work already made
    to it (when the account balance pays a renewal, the handler runs in the transaction that
    opened it): those are flushed first, autoflush or not."""
    held = session.identity_map.get(identity_key(Subscription, subscription_id))
    if held is not None and held in session.dirty:
        session.flush()
    return session.get(Subscription, subscription_id, with_for_update=True, populate_existing=True)


def _on_renewal_paid(ctx, session: Session, invoice, attempt, now: datetime) -> None:
    # Nothing here reads back what it wrote, and no row it locks has pending changes: one
    # flush at commit instead of one before every locking read (the worker's hot path).
    with session.no_autoflush:
        sub = _lock_subscription(session, invoice.subscription_id)
        if sub is None or sub.status == "ended":
            return
        renewed = start_paid_term(sub, invoice.id, invoice.details, invoice.subtotal, now)
        grant_plan_credits(ctx, session, sub, now)
        record_event(session, "subscription.renewed", customer_id=sub.customer_id, now=now, data=renewed)


def start_paid_term(sub, invoice_id: str, details: dict, subtotal: int, now: datetime) -> dict:
    """Move the subscription (a mapped object, or any object with its attributes) to the term
    its renewal invoice paid for, released; returns the `subscription.renewed` event's data.
    Shared by the handler above and the worker's batches (renewal_batch)."""
    was_past_due = sub.status == "past_due"
    sub.status = "active"
    sub.plan, sub.term = details["plan"], details["term"]
    sub.term_price = subtotal
    start = details["term_start_offset"]
    set_calendar(sub, term_start_offset=start, credit_offset=start)
    set_calendar(sub, term_start_offset=start, credit_offset=current_credit_offset(sub, now))
    sub.past_due_since = sub.next_retry_at = None
    sub.retry_count = 0
    sub.pending_invoice_id = None
    sub.version += 1
    sub.updated_at = now
    _release(sub)
    return {"subscription": sub.id, "invoice": invoice_id, "plan": sub.plan, "term": sub.term,
            "current_term_start": sub.current_term_start.isoformat(),
            "current_term_end": sub.current_term_end.isoformat(), "after_dunning": was_past_due}


def _on_renewal_failed(ctx, session: Session, invoice, attempt, now: datetime) -> None:
    """Dunning (S5): past_due with no new credits, retried on the schedule, then Free."""
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
        from creditflow.credits.grants import expire_subscription_lots

        sub.status = "past_due"
        sub.past_due_since = now
        sub.retry_count = 0
        expire_subscription_lots(session, sub.id, sub.customer_id, now=now)
        record_event(session, "subscription.past_due", customer_id=sub.customer_id, now=now, data={
            "subscription": sub.id, "invoice": invoice.id, "failure_code": attempt.failure_code})
    else:
        sub.retry_count += 1
    if sub.retry_count < len(retry_days):
        sub.next_retry_at = sub.past_due_since + timedelta(days=retry_days[sub.retry_count])
        sub.version += 1
        sub.updated_at = now
        _release(sub)
    else:
        invoice.status = "void"
        end_subscription(session, sub, now=now, reason="payment_failed")


fulfilment.register("renewal", on_paid=_on_renewal_paid, on_failed=_on_renewal_failed)
