"""Running the due work of subscriptions, renewals included, a group at a time.

The worker claims due subscriptions in batches and runs them in groups of `GROUP`; a single
subscription (a test clock's, say) is a group of one, through the same code. Each round over a
group takes three steps:

1. one transaction locks the group's subscriptions and their customers, runs every due step
   that needs no gateway (a monthly grant, the end of a cancelled term, a renewal paid by the
   account balance), and opens what must be charged (a renewal invoice, a dunning retry) with
   a pending attempt; it commits before any gateway call;
2. the gateway is called for each attempt, outside any transaction (attempts whose answer was
   lost are asked about instead, never charged again);
3. one transaction records the answers and fulfils the invoices they paid (the next term, its
   plan credits, or dunning).

A subscription with more work due goes round again. A group transaction that fails commits
nothing; the group is then run one subscription at a time, where a fault stays with its row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.customer.models import Customer
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import get_invoice
from creditflow.payment import attempts
from creditflow.payment.attempts import STALE_PENDING, Ticket
from creditflow.kit import metrics
from creditflow.kit.faults import fault_point
from creditflow.payment.gateway import ChargeResult
from creditflow.purchase import checkout
from creditflow.subscription.calendar import LEASE, monthly_grant_due, term_end_due
from creditflow.subscription.models import Subscription
from creditflow.subscription.renewal import end_cancelled_term, grant_next_month, open_renewal, release

log = logging.getLogger("creditflow.worker")

# Subscriptions renewed together. Small enough that few charges are in flight at once (a crash
# leaves at most this many attempts to reconcile) and the first are settled soon after the
# claim; large enough that the two transactions of a round cost little per renewal.
GROUP = 25
MAX_STEPS = 100


@dataclass(frozen=True)
class _Ask:
    """An attempt whose answer was lost: ask the gateway what became of it."""

    attempt_id: str


@dataclass
class _Round:
    charges: list[tuple[str, Ticket]] = field(default_factory=list)
    asks: list[tuple[str, str]] = field(default_factory=list)
    again: list[str] = field(default_factory=list)
    steps: int = 0


def run_due(ctx: Context, subscription_id: str, now: datetime, *, owner: str | None = None) -> int:
    """Run every step due on one subscription at `now`; returns how many ran."""
    return _run_group(ctx, [subscription_id], now, owner)


def renew_batch(ctx: Context, ids: list[str], now: datetime, owner: str) -> int:
    """Run what is due on the claimed subscriptions `ids` (leased to `owner`), `GROUP` at a
    time; returns how many steps ran."""
    return sum(_run_group(ctx, ids[i:i + GROUP], now, owner, batch=True) for i in range(0, len(ids), GROUP))


def _run_group(ctx: Context, ids: list[str], now: datetime, owner: str | None, *, batch: bool = False) -> int:
    """Rounds over the group until nothing is due now. In a batch, a failure is logged and
    stays with its subscription; `run_due` raises it."""
    steps = 0
    for _ in range(MAX_STEPS):
        if not ids:
            break
        try:
            round_ = ctx.db.run(lambda session: _open_round(ctx, session, ids, now, owner))
        except Exception:
            if not batch:
                raise
            if len(ids) == 1:
                # It comes back once its lease is over: the claim leased it, and a failed round
                # commits nothing (a round that committed moved it forward).
                log.exception("due work on subscription %s failed", ids[0])
                metrics.RENEWALS.labels("error").inc()
                return steps
            log.exception("a round over %d subscriptions failed; running them one by one", len(ids))
            return steps + sum(_run_alone(ctx, sub_id, now, owner) for sub_id in ids)
        steps += round_.steps
        again = list(round_.again)
        for sub_id, attempt_id in round_.asks:
            if checkout.reconcile(ctx, attempt_id, now).status != "unknown":
                again.append(sub_id)
        if round_.charges:
            fault_point("renewal.after_attempt_commit")
        answers = [(sub_id, ticket, attempts.charge(ctx.gateway, ticket)) for sub_id, ticket in round_.charges]
        if answers:
            fault_point("renewal.after_gateway")
            again += _settle(ctx, answers, now, owner)
            fault_point("renewal.after_outcome_commit")
        ids = again
    return steps


def _run_alone(ctx: Context, sub_id: str, now: datetime, owner: str | None) -> int:
    """One subscription of a batch whose group failed, in a group of one: the rest goes on."""
    return _run_group(ctx, [sub_id], now, owner, batch=True)


# -- 1. open ----------------------------------------------------------------------------------

def _open_round(ctx: Context, session: Session, ids: list[str], now: datetime, owner: str | None) -> _Round:
    # Locked in the order every purchase takes: subscriptions, then customers; the invoice
    # counter last (when the first invoice is opened).
    subs = session.scalars(select(Subscription).where(Subscription.id.in_(sorted(ids))).order_by(Subscription.id)
                           .with_for_update().execution_options(populate_existing=True)).all()
    session.scalars(select(Customer).where(Customer.id.in_(sorted({sub.customer_id for sub in subs})))
                    .order_by(Customer.id).with_for_update().execution_options(populate_existing=True)).all()
    round_ = _Round()
    for sub in subs:
        for _ in range(MAX_STEPS):
            action = _step(ctx, session, sub, now, owner)
            if action is None:
                break
            round_.steps += 1
            if isinstance(action, Ticket):
                round_.charges.append((sub.id, action))
                break
            if isinstance(action, _Ask):
                round_.asks.append((sub.id, action.attempt_id))
                break
    return round_


def _step(ctx: Context, session: Session, sub: Subscription, now: datetime,
          owner: str | None) -> Ticket | _Ask | str | None:
    """The next due step of a locked subscription: done here (a word saying which), a charge
    to send, an attempt to ask about, or None when nothing is due."""
    if sub.status in ("incomplete", "ended"):
        return None
    if owner is not None and sub.lease_owner not in (None, owner):
        return None  # another worker holds it
    if sub.pending_invoice_id is not None:  # a renewal charge is in flight or in dunning
        if sub.status == "past_due" and sub.next_retry_at > now:
            release(sub)
            return None
        sub.due_at = now + LEASE
        unsettled = attempts.pending_attempt(session, sub.pending_invoice_id)
        if unsettled is not None:
            if unsettled.status == "pending" and unsettled.created_at > now - STALE_PENDING:
                # Its worker may still be waiting on the gateway (the lease is shorter than
                # that): deciding "never charged" now could let dunning charge a second time.
                sub.due_at = unsettled.created_at + STALE_PENDING
                return None
            return _Ask(unsettled.id)
        return _collect(ctx, session, get_invoice(session, sub.pending_invoice_id, for_update=True), now)
    if monthly_grant_due(sub, now):
        grant_next_month(ctx, session, sub, now)
        return "granted"
    if term_end_due(sub, now):
        if sub.cancel_at_period_end:
            end_cancelled_term(ctx, session, sub, now)
            metrics.count_renewal(session, "ended")
            return "ended"
        return _collect(ctx, session, open_renewal(ctx, session, sub, now), now)
    release(sub)
    return None


def _collect(ctx: Context, session: Session, invoice: Invoice, now: datetime) -> Ticket | str:
    begin = checkout.open_collection(ctx, session, invoice, now)
    metrics.count_renewal(session, None if isinstance(begin, Ticket) else begin.status)  # a charge: once answered
    return begin if isinstance(begin, Ticket) else "settled"


# -- 3. settle --------------------------------------------------------------------------------

def _settle(ctx: Context, answers: list[tuple[str, Ticket, ChargeResult]], now: datetime,
            owner: str | None) -> list[str]:
    """Record the answers in one transaction (one by one if it fails); returns the
    subscriptions with more work due now."""
    if len(answers) > 1:
        try:
            return ctx.db.run(lambda session: [
                sub_id for sub_id, ticket, result in sorted(answers, key=lambda answer: answer[1].attempt_id)
                if _settle_one(ctx, session, sub_id, ticket, result, now, owner)])
        except Exception:
            log.exception("settling %d renewal charges together failed; settling one by one", len(answers))
    again = []
    for sub_id, ticket, result in answers:
        try:
            if ctx.db.run(lambda session: _settle_one(ctx, session, sub_id, ticket, result, now, owner)):
                again.append(sub_id)
        except Exception:  # the attempt stays pending: reconciled once stale, never charged twice
            log.exception("settling attempt %s failed", ticket.attempt_id)
    return again


def _settle_one(ctx: Context, session: Session, sub_id: str, ticket: Ticket, result: ChargeResult,
                now: datetime, owner: str | None) -> bool:
    """Settle one answer; whether its subscription has more work due now."""
    settled = checkout.settle(ctx, session, ticket.attempt_id, result, now)
    metrics.count_renewal(session, settled.status)  # counted when this transaction commits
    fault_point("renewal.before_outcome_commit")
    if settled.status == "unknown":
        return False  # the lease expires and a later visit asks the gateway
    sub = session.get(Subscription, sub_id)  # in the identity map after fulfilment ran
    if sub is None or (sub.lease_owner is None and (sub.due_at is None or sub.due_at > now)):
        return False
    # More is due at once (a worker that was down for two terms): it stays leased for the next
    # round, so that if that round fails no other round claims it before the lease is over.
    sub.lease_owner, sub.due_at = owner, now + LEASE
    return True
