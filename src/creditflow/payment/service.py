"""Collecting an invoice through the gateway without ever charging twice (SPEC P3).

1. `begin_collection`, inside the caller's transaction: apply the account balance, and if
   anything is left to pay, write a `pending` attempt. The caller commits.
2. `call_gateway`, outside any transaction, with the attempt id as the idempotency key.
3. `settle_attempt`, in a new transaction: record the outcome and run the invoice's
   fulfilment handler with it, so the effect commits with the payment.

An `unknown` outcome (timeout) stays `unknown` until `reconcile_attempt` asks the gateway
what happened to that idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, lazyload

from creditflow.customer.models import Customer
from creditflow.events.outbox import record_event
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import get_invoice
from creditflow.kit.ids import new_id
from creditflow.payment.fulfilment import handler_for
from creditflow.payment.gateway import ChargeRequest, ChargeResult
from creditflow.payment.models import PaymentAttempt

# A pending attempt older than this was abandoned by a crashed process: reconcile it.
STALE_PENDING = timedelta(minutes=10)


@dataclass(frozen=True)
class Ticket:
    """A committed pending attempt, ready to be sent to the gateway."""

    attempt_id: str
    invoice_id: str
    request: ChargeRequest | None  # None: nothing to charge (no payment method, see outcome)


@dataclass(frozen=True)
class Outcome:
    invoice_id: str
    status: str  # paid, failed, unknown
    failure_code: str | None = None
    failure_message: str | None = None


def begin_collection(ctx, session: Session, invoice: Invoice, now: datetime) -> Ticket | Outcome:
    """Start collecting an open invoice. Returns an Outcome when no gateway call is needed."""
    customer = session.get(Customer, invoice.customer_id, with_for_update=True, populate_existing=True)
    if invoice.balance_applied == 0 and customer.balance > 0 and invoice.total > 0:
        applied = min(customer.balance, invoice.total)
        customer.balance -= applied
        invoice.balance_applied = applied
    due = invoice.total - invoice.balance_applied
    if due <= 0:
        _mark_paid(ctx, session, invoice, None, now)
        return Outcome(invoice.id, "paid")
    attempt = PaymentAttempt(
        id=new_id("pay"), invoice_id=invoice.id, customer_id=customer.id,
        test_clock_id=customer.test_clock_id, amount=due, currency=invoice.currency,
        status="pending", payment_method=customer.payment_method, created_at=now,
    )
    session.add(attempt)
    if customer.payment_method is None:
        _apply_failure(ctx, session, invoice, attempt, now, "no_payment_method",
                       "The customer has no payment method.")
        return Outcome(invoice.id, "failed", "no_payment_method", "The customer has no payment method.")
    return Ticket(attempt.id, invoice.id, ChargeRequest(
        customer_id=customer.id, gateway_customer_id=customer.gateway_customer_id,
        payment_method=customer.payment_method, amount=due, currency=invoice.currency,
        idempotency_key=attempt.id, description=f"creditflow invoice {invoice.number}",
    ))


def call_gateway(ctx, ticket: Ticket) -> ChargeResult:
    try:
        return ctx.gateway.charge(ticket.request)
    except Exception as exc:  # network trouble: we can't know whether it charged
        return ChargeResult("unknown", failure_code="gateway_error", failure_message=str(exc)[:500])


def settle_attempt(ctx, session: Session, attempt_id: str, result: ChargeResult, now: datetime) -> Outcome:
    attempt = session.get(PaymentAttempt, attempt_id, with_for_update=True, populate_existing=True)
    # The lines aren't needed to settle: don't load them (a query saved on every payment).
    invoice = session.get(Invoice, attempt.invoice_id, with_for_update=True, populate_existing=True,
                          options=[lazyload(Invoice.lines)])
    if attempt.status in ("succeeded", "failed"):  # settled by someone else meanwhile
        return _outcome_of(invoice, attempt)
    attempt.gateway_reference = result.reference or attempt.gateway_reference
    if result.status == "succeeded":
        attempt.status = "succeeded"
        attempt.completed_at = now
        _mark_paid(ctx, session, invoice, attempt, now)
    elif result.status == "failed":
        _apply_failure(ctx, session, invoice, attempt, now, result.failure_code or "card_declined",
                       result.failure_message or "The payment was declined.")
    else:
        attempt.status = "unknown"
        attempt.failure_code = result.failure_code
        attempt.failure_message = result.failure_message
    return _outcome_of(invoice, attempt)


def collect(ctx, invoice_id: str, now: datetime, begin: Ticket | Outcome | None = None) -> Outcome:
    """Run steps 2 and 3 for a ticket (or steps 1-3 for an open invoice)."""
    if begin is None:
        with ctx.db.transaction() as session:
            begin = begin_collection(ctx, session, get_invoice(session, invoice_id, for_update=True), now)
    if isinstance(begin, Outcome):
        return begin
    result = call_gateway(ctx, begin)
    return ctx.db.run(lambda session: settle_attempt(ctx, session, begin.attempt_id, result, now))


def reconcile_attempt(ctx, attempt_id: str, now: datetime) -> Outcome:
    """Ask the gateway what became of an unknown or abandoned attempt, and settle it.

    A charge the gateway never saw is settled as failed (`not_charged`): the attempt is over,
    and a new attempt charges again (at once for a renewal, which is not dunned for it; the
    customer's next try for a purchase). Never charges.
    """
    with ctx.db.transaction(readonly=True) as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        key, reference = attempt.id, attempt.gateway_reference
    try:
        found = ctx.gateway.lookup(key, reference)
    except Exception as exc:
        return Outcome(attempt.invoice_id, "unknown", "gateway_error", str(exc)[:500])
    if found.status == "not_found" and attempt.status == "unknown" and now - attempt.created_at < STALE_PENDING:
        # A processor may still be working on a request whose answer we lost; "not found" only
        # becomes "never charged" once the attempt is old enough.
        return Outcome(attempt.invoice_id, "unknown")
    if found.status == "not_found":
        found = ChargeResult("failed", failure_code="not_charged",
                             failure_message="The payment never reached the gateway.")
    elif found.status == "unknown":
        return Outcome(attempt.invoice_id, "unknown")
    return ctx.db.run(lambda session: settle_attempt(ctx, session, attempt_id, found, now))


def unsettled_attempts(session: Session, now: datetime, *, test_clock_id: str | None = None,
                       real_time: bool = True) -> list[str]:
    """Attempts to reconcile: unknown ones, and pending ones abandoned long enough ago."""
    query = select(PaymentAttempt.id).where(or_(
        PaymentAttempt.status == "unknown",
        (PaymentAttempt.status == "pending") & (PaymentAttempt.created_at <= now - STALE_PENDING),
    ))
    if real_time:
        query = query.where(PaymentAttempt.test_clock_id.is_(None))
    else:
        query = query.where(PaymentAttempt.test_clock_id == test_clock_id)
    return list(session.scalars(query.order_by(PaymentAttempt.created_at).limit(500)))


def _mark_paid(ctx, session: Session, invoice: Invoice, attempt: PaymentAttempt | None, now: datetime) -> None:
    invoice.status = "paid"
    invoice.amount_paid = attempt.amount if attempt else 0
    invoice.paid_at = now
    record_event(session, "invoice.paid", customer_id=invoice.customer_id, now=now, data={
        "invoice": invoice.id, "number": invoice.number, "total": invoice.total,
        "amount_paid": invoice.amount_paid, "currency": invoice.currency, "purpose": invoice.purpose,
    })
    handler_for(invoice.purpose).on_paid(ctx, session, invoice, attempt, now)


def _apply_failure(ctx, session, invoice: Invoice, attempt: PaymentAttempt, now, code: str, message: str) -> None:
    attempt.status = "failed"
    attempt.failure_code = code
    attempt.failure_message = message
    attempt.completed_at = now
    if invoice.balance_applied:  # give the account balance back; a later attempt re-applies it
        customer = session.get(Customer, invoice.customer_id, with_for_update=True, populate_existing=True)
        customer.balance += invoice.balance_applied
        invoice.balance_applied = 0
    record_event(session, "invoice.payment_failed", customer_id=invoice.customer_id, now=now, data={
        "invoice": invoice.id, "attempt": attempt.id, "failure_code": code, "failure_message": message,
    })
    handler_for(invoice.purpose).on_failed(ctx, session, invoice, attempt, now)


def _outcome_of(invoice: Invoice, attempt: PaymentAttempt) -> Outcome:
    if attempt.status == "succeeded":
        return Outcome(invoice.id, "paid")
    if attempt.status == "failed":
        return Outcome(invoice.id, "failed", attempt.failure_code, attempt.failure_message)
    return Outcome(invoice.id, "unknown", attempt.failure_code, attempt.failure_message)
