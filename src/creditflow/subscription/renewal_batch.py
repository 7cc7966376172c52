"""Renewals of a claimed batch, a group at a time, in three steps per group (issue 2).

`run_due` renews one subscription in three transactions of its own (open, gateway, settle),
through the ORM: correct for every case, but ~10 ms of Python per renewal. The worker's usual
case, an active subscription at the end of its term with nothing else going on, is done here
for a group of the claimed batch at once, with the same rules (SPEC P3 included):

1. one transaction opens every renewal invoice of the group with its pending attempt, and
   commits, before any gateway call;
2. the gateway is called for each attempt, outside any transaction;
3. one transaction records the successful charges and fulfils them (invoice paid, the next
   term, the month's plan credits through the credit ledger's `Book`, the events).

Everything else goes through `run_due`, one subscription at a time: a subscription that isn't
in the usual case (a monthly grant, a scheduled change, dunning, a cancellation, an account
balance to apply, no payment method), a declined or unknown charge, a row that changed between
the steps, and the whole group if one of its transactions fails (a unique key, say): nothing
committed then, and `run_due` isolates the subscription at fault.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from creditflow.credits.book import Book
from creditflow.credits.models import CreditLot
from creditflow.customer.models import Customer
from creditflow.events.outbox import event_row, record_events
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import InvoiceDraft, LineDraft, open_invoices
from creditflow.kit.ids import new_id
from creditflow.kit.periods import Term, month_boundary
from creditflow.payment.gateway import ChargeRequest, ChargeResult
from creditflow.payment.models import PaymentAttempt
from creditflow.payment.service import Ticket, call_gateway
from creditflow.subscription.lifecycle import LEASE, monthly_grant_due, term_end_due
from creditflow.subscription.models import Subscription
from creditflow.subscription.renewal import run_due, settle_charge, start_paid_term

log = logging.getLogger("creditflow.worker")

subscriptions = Subscription.__table__
customers = Customer.__table__
invoices = Invoice.__table__
attempts = PaymentAttempt.__table__
lots = CreditLot.__table__

_lease = update(subscriptions).where(subscriptions.c.id == bindparam("b_id")).values(
    pending_invoice_id=bindparam("b_invoice"), due_at=bindparam("b_due_at"), updated_at=bindparam("b_now"))
_attempt_paid = update(attempts).where(attempts.c.id == bindparam("b_id")).values(
    status="succeeded", gateway_reference=bindparam("b_reference"), completed_at=bindparam("b_now"))
_invoice_paid = update(invoices).where(invoices.c.id == bindparam("b_id")).values(
    status="paid", amount_paid=bindparam("b_amount"), paid_at=bindparam("b_now"))
# What `start_paid_term` changes.
_TERM_COLUMNS = ("status", "plan", "term", "term_price", "term_start_offset", "term_end_offset", "credit_offset",
                 "current_term_start", "current_term_end", "credit_period_start", "credit_period_end",
                 "past_due_since", "next_retry_at", "retry_count", "pending_invoice_id", "version", "updated_at",
                 "due_at", "lease_owner")
_next_term = update(subscriptions).where(subscriptions.c.id == bindparam("b_id")).values(
    {name: bindparam(f"b_{name}") for name in _TERM_COLUMNS})


@dataclass(frozen=True)
class Opened:
    """A renewal opened by the batch: its invoice and committed pending attempt."""

    subscription_id: str
    customer_id: str
    ticket: Ticket


# Renewals opened together. Small enough that few charges are in flight at once (a crash
# leaves at most this many attempts to reconcile) and the first are settled soon after the
# claim; large enough that the two transactions per group cost little per renewal.
GROUP = 25


def renew_batch(ctx, ids: list[str], now: datetime, owner: str) -> int:
    """Run what is due on the claimed subscriptions `ids` (leased to `owner`), `GROUP` at a
    time; returns how many steps ran, as `run_due` counts them."""
    return sum(_renew_group(ctx, ids[i:i + GROUP], now, owner) for i in range(0, len(ids), GROUP))


def _renew_group(ctx, ids: list[str], now: datetime, owner: str) -> int:
    try:
        opened, others = ctx.db.run(lambda session: _open_renewals(ctx, session, ids, now, owner))
    except Exception:  # nothing committed: each one on its own, where a fault stays with its row
        log.exception("opening a group of %d renewals failed; renewing one by one", len(ids))
        opened, others = [], list(ids)
    done = len(opened)
    charged = [(renewal, call_gateway(ctx, renewal.ticket)) for renewal in opened]  # P3: after the commit
    paid = [(renewal, result) for renewal, result in charged if result.status == "succeeded"]
    settled: set[str] = set()
    if paid:
        try:
            settled = ctx.db.run(lambda session: _settle_paid(ctx, session, paid, now))
        except Exception:
            log.exception("settling a group of %d renewals failed; settling one by one", len(paid))
    for renewal, result in charged:
        if renewal.ticket.attempt_id not in settled:
            done += _settle_one(ctx, renewal, result, now, owner)
    for sub_id in others:
        done += _run_one(ctx, sub_id, now, owner)
    return done


def _settle_one(ctx, renewal: Opened, result: ChargeResult, now: datetime, owner: str) -> int:
    """A charge the batch didn't settle (declined, unknown, or its rows changed meanwhile):
    recorded on its own, as `run_due` does, then whatever else is due on the subscription."""
    try:
        outcome, released = ctx.db.run(
            lambda session: settle_charge(ctx, session, renewal.subscription_id, renewal.ticket, result, now))
    except Exception:  # the attempt stays pending: reconciled once stale, never charged twice
        log.exception("settling attempt %s failed", renewal.ticket.attempt_id)
        return 0
    if outcome.status == "unknown" or released:
        return 0
    return _run_one(ctx, renewal.subscription_id, now, owner)


def _run_one(ctx, sub_id: str, now: datetime, owner: str) -> int:
    try:
        return run_due(ctx, sub_id, now, owner=owner)
    except Exception:
        # The rest of the batch goes on. This one comes back once its lease is over: the claim
        # leased it, and a failed step commits nothing (a step that committed moved it forward).
        log.exception("due work on subscription %s failed", sub_id)
        return 0


# -- 1. open ----------------------------------------------------------------------------------

def _open_renewals(ctx, session: Session, ids: list[str], now: datetime,
                   owner: str) -> tuple[list[Opened], list[str]]:
    """Open the renewal invoice and pending attempt of every subscription of the batch in the
    usual case; the others are returned untouched, for `run_due`."""
    connection = session.connection()
    # Locked in the order every renewal takes: the subscriptions, then their customers.
    subs = connection.execute(
        select(subscriptions).where(subscriptions.c.id.in_(ids)).order_by(subscriptions.c.id).with_for_update()
    ).all()
    payers = {row.id: row for row in connection.execute(
        select(customers.c.id, customers.c.balance, customers.c.payment_method, customers.c.gateway_customer_id)
        .where(customers.c.id.in_(sorted({sub.customer_id for sub in subs})))
        .order_by(customers.c.id).with_for_update()
    )}
    currency = ctx.catalog.currency
    drafts, leases, charges, others = [], [], [], []
    for sub in subs:
        payer = payers[sub.customer_id]
        if not _usual_renewal(sub, payer, owner, now):
            others.append(sub.id)
            continue
        plan, term = ctx.catalog.plan(sub.plan), Term(sub.term)
        price = plan.price(term)
        if price <= 0:  # nothing to charge: `run_due` marks it paid without the gateway
            others.append(sub.id)
            continue
        start = sub.term_end_offset
        period_start, period_end = month_boundary(sub.anchor, start), month_boundary(sub.anchor, start + term.months)
        invoice_id = new_id("inv")
        # As `_start_renewal` writes it, with the same unique dedupe key.
        drafts.append(InvoiceDraft(
            id=invoice_id, customer_id=sub.customer_id, currency=currency, purpose="renewal", subscription_id=sub.id,
            period_start=period_start, period_end=period_end,
            dedupe_key=f"renewal:{sub.id}:{sub.anchor.isoformat()}:{start}",
            details={"subscription": sub.id, "plan": sub.plan, "term": sub.term, "term_start_offset": start},
            lines=[LineDraft("subscription", f"{plan.name} plan, {term.value}", price, period_start, period_end)],
        ))
        leases.append({"b_id": sub.id, "b_invoice": invoice_id, "b_due_at": now + LEASE, "b_now": now})
        # As `begin_collection` writes it: the attempt's id is the gateway's idempotency key.
        charges.append(dict(
            id=new_id("pay"), invoice_id=invoice_id, customer_id=sub.customer_id, test_clock_id=None, amount=price,
            currency=currency, status="pending", payment_method=payer.payment_method, gateway_reference=None,
            failure_code=None, failure_message=None, created_at=now, completed_at=None,
        ))
    if not charges:
        return [], others
    connection.execute(_lease, leases)
    numbers = open_invoices(session, drafts, now)  # numbered last: the counter row is locked until commit
    connection.execute(insert(attempts), charges)
    opened = [Opened(draft.subscription_id, charge["customer_id"], Ticket(
        charge["id"], charge["invoice_id"], ChargeRequest(
            customer_id=charge["customer_id"], gateway_customer_id=payers[charge["customer_id"]].gateway_customer_id,
            payment_method=charge["payment_method"], amount=charge["amount"], currency=currency,
            idempotency_key=charge["id"], description=f"creditflow invoice {numbers[charge['invoice_id']]}")))
        for draft, charge in zip(drafts, charges)]
    return opened, others


def _usual_renewal(sub, payer, owner: str, now: datetime) -> bool:
    """The end of an active term, leased to this worker, with nothing else to do first and a
    payment method to charge in full (as `_next_step` would decide, the other cases aside)."""
    return (sub.status == "active" and sub.lease_owner == owner and sub.test_clock_id is None
            and sub.pending_invoice_id is None and sub.scheduled_plan is None and not sub.cancel_at_period_end
            and term_end_due(sub, now) and not monthly_grant_due(sub, now)
            and payer.payment_method is not None and payer.balance == 0)


# -- 3. settle --------------------------------------------------------------------------------

def _settle_paid(ctx, session: Session, paid: list[tuple[Opened, ChargeResult]], now: datetime) -> set[str]:
    """Record the successful charges and fulfil them, as `settle_attempt` and the renewal's
    `on_paid` handler do; returns the attempts settled. One whose rows changed since the batch
    opened it (settled by someone else, the subscription ended meanwhile) is left to
    `_settle_one`."""
    connection = session.connection()
    by_attempt = {renewal.ticket.attempt_id: (renewal, result) for renewal, result in paid}
    # The same locking order as one payment: attempts, invoices, subscriptions, then credits.
    pending = set(connection.scalars(
        select(attempts.c.id).where(attempts.c.id.in_(sorted(by_attempt)), attempts.c.status == "pending")
        .order_by(attempts.c.id).with_for_update()))
    open_ = {row.id: row for row in connection.execute(
        select(invoices.c.id, invoices.c.number, invoices.c.total, invoices.c.subtotal, invoices.c.currency,
               invoices.c.details, invoices.c.status)
        .where(invoices.c.id.in_(sorted(by_attempt[a][0].ticket.invoice_id for a in pending)))
        .order_by(invoices.c.id).with_for_update()) if row.status == "open"}
    subs = {row.id: row for row in connection.execute(
        select(subscriptions).where(subscriptions.c.id.in_(sorted(by_attempt[a][0].subscription_id for a in pending)))
        .order_by(subscriptions.c.id).with_for_update())}
    ready = []
    for attempt_id in sorted(pending):
        renewal, result = by_attempt[attempt_id]
        sub, invoice = subs.get(renewal.subscription_id), open_.get(renewal.ticket.invoice_id)
        if invoice is not None and sub is not None and sub.status == "active" \
                and sub.pending_invoice_id == invoice.id:
            ready.append((renewal, result, invoice, SimpleNamespace(**sub._mapping)))
    if not ready:
        return set()

    connection.execute(_attempt_paid, [{"b_id": renewal.ticket.attempt_id, "b_reference": result.reference,
                                        "b_now": now} for renewal, result, _, _ in ready])
    connection.execute(_invoice_paid, [{"b_id": invoice.id, "b_amount": renewal.ticket.request.amount, "b_now": now}
                                       for renewal, _, invoice, _ in ready])
    record_events(session, [event_row("invoice.paid", customer_id=renewal.customer_id, now=now, data={
        "invoice": invoice.id, "number": invoice.number, "total": invoice.total,
        "amount_paid": renewal.ticket.request.amount, "currency": invoice.currency, "purpose": "renewal",
    }) for renewal, _, invoice, _ in ready])

    renewed = [(sub, start_paid_term(sub, invoice.id, invoice.details, invoice.subtotal, now))
               for _, _, invoice, sub in ready]
    _grant_plan_credits(ctx, session, [sub for sub, _ in renewed], now)
    connection.execute(_next_term, [{"b_id": sub.id, **{f"b_{name}": getattr(sub, name) for name in _TERM_COLUMNS}}
                                    for sub, _ in renewed])
    record_events(session, [event_row("subscription.renewed", customer_id=sub.customer_id, now=now, data=data)
                            for sub, data in renewed])
    return {renewal.ticket.attempt_id for renewal, _, _, _ in ready}


def _grant_plan_credits(ctx, session: Session, subs: list, now: datetime) -> None:
    """`grant_plan_credits` for many subscriptions (one customer each): last month's plan
    credits expire and the new month's allotment is granted (S3), through the ledger's Book."""
    # The accounts first, then their lots: the order every credit change takes locks in.
    books = {sub.customer_id: Book.lock(ctx, session, sub.customer_id, now=now)
             for sub in sorted(subs, key=lambda sub: sub.customer_id)}
    live = {}
    for lot in session.connection().execute(
            select(lots.c.id, lots.c.subscription_id).where(
                lots.c.subscription_id.in_(sorted(sub.id for sub in subs)), lots.c.kind == "subscription",
                lots.c.expired_at.is_(None)).order_by(lots.c.id).with_for_update()):
        live.setdefault(lot.subscription_id, []).append(lot.id)
    for sub in subs:
        book = books[sub.customer_id]
        book.ensure_lots(live.get(sub.id, ()))
        for lot_id in live.get(sub.id, ()):
            book.expire(lot_id, at=now)
        book.grant("subscription", ctx.catalog.plan(sub.plan).monthly_credits, expires_at=sub.credit_period_end,
                   grant_key=f"sub:{sub.id}:{sub.credit_period_start.isoformat()}", subscription_id=sub.id)
        book.flush()
