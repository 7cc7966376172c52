"""Collecting an invoice through the gateway without ever charging twice.

1. `open_collection`, inside the caller's transaction: apply the account balance, and if
   anything is left to pay, write a `pending` attempt. The caller commits.
2. `payment.attempts.charge`, outside any transaction, with the attempt id as idempotency key.
3. `settle`, in a new transaction: record the outcome and fulfil the invoice with it
   (`fulfilment.FULFILMENT`), so the effect commits with the payment.

An `unknown` outcome (a timeout) stays `unknown` until `reconcile` asks the gateway what
happened to that idempotency key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, lazyload

from creditflow.context import Context
from creditflow.customer.models import Customer
from creditflow.events.outbox import record_event
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import get_invoice
from creditflow.kit.errors import PaymentFailed
from creditflow.kit.faults import fault_point
from creditflow.payment import attempts
from creditflow.payment.attempts import Ticket
from creditflow.payment.gateway import ChargeRequest, ChargeResult
from creditflow.payment.models import PaymentAttempt
from creditflow.purchase.fulfilment import FULFILMENT


@dataclass(frozen=True)
class Outcome:
    invoice_id: str
    status: str  # paid, failed, unknown
    failure_code: str | None = None
    failure_message: str | None = None

    def raise_unless_paid(self, pending: str) -> None:
        """The purchase's answer to its caller: nothing when paid; `payment_failed`, or
        `payment_pending` with `pending` saying what happens once the answer is known."""
        if self.status == "failed":
            raise PaymentFailed(self.failure_message or "The payment failed.", code="payment_failed")
        if self.status == "unknown":
            raise PaymentFailed(f"The payment's outcome is unknown; {pending} Nothing will be charged twice.",
                                code="payment_pending")


def open_collection(ctx: Context, session: Session, invoice: Invoice, now: datetime) -> Ticket | Outcome:
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
    attempt = attempts.new_attempt(
        session, invoice_id=invoice.id, customer_id=customer.id, test_clock_id=customer.test_clock_id,
        amount=due, currency=invoice.currency, payment_method=customer.payment_method, now=now)
    if customer.payment_method is None:
        message = "The customer has no payment method."
        attempts.fail(attempt, "no_payment_method", message, now)
        _apply_failure(ctx, session, invoice, attempt, now)
        return Outcome(invoice.id, "failed", "no_payment_method", message)
    return Ticket(attempt.id, invoice.id, ChargeRequest(
        customer_id=customer.id, gateway_customer_id=customer.gateway_customer_id,
        payment_method=customer.payment_method, amount=due, currency=invoice.currency,
        idempotency_key=attempt.id, description=f"creditflow invoice {invoice.number}",
    ))


def settle(ctx: Context, session: Session, attempt_id: str, result: ChargeResult, now: datetime) -> Outcome:
    """Record the gateway's answer and, when it is final, fulfil the invoice with it."""
    attempt = attempts.lock_attempt(session, attempt_id)
    # The lines aren't needed to settle: don't load them (a query saved on every payment).
    invoice = session.get(Invoice, attempt.invoice_id, with_for_update=True, populate_existing=True,
                          options=[lazyload(Invoice.lines)])
    if attempts.is_settled(attempt):  # settled by someone else meanwhile
        return _outcome_of(invoice, attempt)
    attempts.record_result(attempt, result, now)
    if attempt.status == "succeeded":
        _mark_paid(ctx, session, invoice, attempt, now)
    elif attempt.status == "failed":
        _apply_failure(ctx, session, invoice, attempt, now)
    return _outcome_of(invoice, attempt)


def collect(ctx: Context, invoice_id: str, now: datetime, begin: Ticket | Outcome | None = None) -> Outcome:
    """Steps 2 and 3 for a committed ticket (or steps 1 to 3 for an open invoice)."""
    if begin is None:
        with ctx.db.transaction() as session:
            begin = open_collection(ctx, session, get_invoice(session, invoice_id, for_update=True), now)
    if isinstance(begin, Outcome):
        return begin
    fault_point("checkout.after_attempt_commit")
    result = attempts.charge(ctx.gateway, begin)
    fault_point("checkout.after_gateway")

    def record(session: Session) -> Outcome:
        outcome = settle(ctx, session, begin.attempt_id, result, now)
        fault_point("checkout.before_outcome_commit")
        return outcome

    outcome = ctx.db.run(record)
    fault_point("checkout.after_outcome_commit")
    return outcome


def reconcile(ctx: Context, attempt_id: str, now: datetime) -> Outcome:
    """Ask the gateway what became of an unknown or abandoned attempt, and settle it. Never charges."""
    with ctx.db.transaction(readonly=True) as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        session.expunge(attempt)
    found = attempts.find_out(ctx.gateway, attempt, now)
    if found is None:
        return Outcome(attempt.invoice_id, "unknown")
    return ctx.db.run(lambda session: settle(ctx, session, attempt_id, found, now))


def reconcile_due(ctx: Context, now: datetime, test_clock_id: str | None = None) -> int:
    """The worker's job: reconcile every unknown or abandoned attempt of the clock's customers."""
    with ctx.db.transaction(readonly=True) as session:
        due = attempts.unsettled_attempts(session, now, test_clock_id=test_clock_id)
    for attempt_id in due:
        reconcile(ctx, attempt_id, now)
    return len(due)


def _mark_paid(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
               now: datetime) -> None:
    invoice.status = "paid"
    invoice.amount_paid = attempt.amount if attempt else 0
    invoice.paid_at = now
    record_event(session, "invoice.paid", customer_id=invoice.customer_id, now=now, data={
        "invoice": invoice.id, "number": invoice.number, "total": invoice.total,
        "amount_paid": invoice.amount_paid, "currency": invoice.currency, "purpose": invoice.purpose,
    })
    FULFILMENT[invoice.purpose].on_paid(ctx, session, invoice, attempt, now)


def _apply_failure(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt, now: datetime) -> None:
    if invoice.balance_applied:  # give the account balance back; a later attempt re-applies it
        customer = session.get(Customer, invoice.customer_id, with_for_update=True, populate_existing=True)
        customer.balance += invoice.balance_applied
        invoice.balance_applied = 0
    record_event(session, "invoice.payment_failed", customer_id=invoice.customer_id, now=now, data={
        "invoice": invoice.id, "attempt": attempt.id, "failure_code": attempt.failure_code,
        "failure_message": attempt.failure_message,
    })
    FULFILMENT[invoice.purpose].on_failed(ctx, session, invoice, attempt, now)


def _outcome_of(invoice: Invoice, attempt: PaymentAttempt) -> Outcome:
    if attempt.status == "succeeded":
        return Outcome(invoice.id, "paid")
    if attempt.status == "failed":
        return Outcome(invoice.id, "failed", attempt.failure_code, attempt.failure_message)
    return Outcome(invoice.id, "unknown", attempt.failure_code, attempt.failure_message)
