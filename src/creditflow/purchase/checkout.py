"""Collecting an invoice through the gateway without ever charging twice.

1. `open_collection`, inside the caller's transaction: apply the account balance, and if
   anything is left to pay, write a `pending` attempt. The caller commits.
2. `payment.attempts.charge`, outside any transaction, with the attempt id as idempotency key.
3. `settle`, in a new transaction: record the outcome and fulfil the invoice with it
   (`fulfilment.FULFILMENT`), so the effect commits with the payment.

An `unknown` outcome (a timeout) stays `unknown` until `reconcile` asks the gateway what
happened to that idempotency key.

A purchase's payment may need the cardholder's authentication (3-D Secure): the gateway answers
`requires_action`, the attempt waits in that status, nothing is fulfilled and the invoice stays
`open`; `collect` raises `AuthenticationRequired` with a one-time link to where the customer
authenticates. `finish_authentication` then settles the same attempt with the gateway's answer
(never a second charge). A failed or abandoned authentication leaves the invoice open:
`open_invoice.pay_open_invoice` charges it again later, through these same steps. Renewals are charged
off-session: a card that needs authentication fails there (`authentication_required`) and is
dunned like a decline, with an `invoice.payment_action_required` event.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from creditflow.context import Context
from creditflow.customer.models import Customer
from creditflow.events.outbox import record_event
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import get_invoice
from creditflow.kit.errors import NotFound, PaymentFailed
from creditflow.kit.faults import fault_point
from creditflow.payment import attempts
from creditflow.payment.attempts import Ticket
from creditflow.payment.gateway import ChargeRequest, ChargeResult
from creditflow.payment.models import PaymentAttempt
from creditflow.purchase.fulfilment import FULFILMENT

# Where the one-time link of a payment awaiting authentication opens (the billing page's).
AUTHENTICATION_PATH = "/billing/authenticate/"
AUTHENTICATION_LINK_TTL = timedelta(hours=24)
# Failures after which the customer may simply try again: the invoice stays open, nothing of
# the purchase is undone (the authentication failed or was abandoned; a newer attempt replaced it).
_RETRYABLE = ("authentication_failed", "superseded")
AWAITING = "requires_action"


class AuthenticationRequired(PaymentFailed):
    """The payment needs the cardholder's authentication: nothing is granted yet, the invoice
    is open, and `link` (a path) opens the page where the customer authenticates."""

    def __init__(self, invoice_id: str, link: str | None):
        super().__init__("The card needs your authentication (3-D Secure) before the payment can go through; "
                         "nothing is granted until it does.", code="authentication_required",
                         extra={"invoice": invoice_id, "url": link})
        self.invoice_id = invoice_id
        self.link = link


@dataclass(frozen=True)
class Outcome:
    invoice_id: str
    status: str  # paid, failed, unknown, requires_action
    failure_code: str | None = None
    failure_message: str | None = None
    attempt_id: str | None = None
    link: str | None = None  # requires_action: the one-time link's path (new links only)

    def raise_unless_paid(self, pending: str) -> None:
        """The purchase's answer to its caller: nothing when paid; `payment_failed`, or
        `payment_pending` with `pending` saying what happens once the answer is known."""
        if self.status == "failed":
            raise PaymentFailed(self.failure_message or "The payment failed.", code="payment_failed")
        if self.status == "unknown":
            raise PaymentFailed(f"The payment's outcome is unknown; {pending} Nothing will be charged twice.",
                                code="payment_pending")


def open_collection(ctx: Context, session: Session, invoice: Invoice, now: datetime, *,
                    on_session: bool | None = None) -> Ticket | Outcome:
    """Start collecting an open invoice. Returns an Outcome when no gateway call is needed.

    Purchases are charged on-session (the customer is there to authenticate), renewals
    off-session, unless `on_session` says otherwise (the customer paying a renewal on the page)."""
    customer = session.get(Customer, invoice.customer_id, with_for_update=True, populate_existing=True)
    if on_session is None:
        on_session = invoice.purpose != "renewal"
    if "authentication" in (invoice.details or {}):  # an attempt of it once waited for the cardholder
        supersede_waiting(session, invoice.id, now)
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
        idempotency_key=attempt.id, description=f"creditflow invoice {invoice.number}", on_session=on_session,
    ))


def supersede_waiting(session: Session, invoice_id: str, now: datetime) -> None:
    """A new attempt replaces one still waiting for authentication: that one can no longer
    complete (its link and page refuse it), so the invoice is paid at most once."""
    for waiting in session.scalars(select(PaymentAttempt).where(
            PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.status == AWAITING).with_for_update()):
        attempts.fail(waiting, "superseded", "A newer payment attempt replaced this one.", now)


def settle(ctx: Context, session: Session, attempt_id: str, result: ChargeResult, now: datetime) -> Outcome:
    """Record the gateway's answer and, when it is final, fulfil the invoice with it."""
    attempt = attempts.lock_attempt(session, attempt_id)
    # The lines aren't needed to settle: don't load them (a query saved on every payment).
    invoice = session.get(Invoice, attempt.invoice_id, with_for_update=True, populate_existing=True,
                          options=[lazyload(Invoice.lines)])
    if attempts.is_settled(attempt):  # settled by someone else meanwhile
        return _outcome_of(invoice, attempt)
    if result.status == AWAITING:
        return _await_authentication(ctx, session, invoice, attempt, result, now)
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
    if outcome.status == AWAITING:
        raise AuthenticationRequired(outcome.invoice_id, outcome.link)
    return outcome


def _await_authentication(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt,
                          result: ChargeResult, now: datetime) -> Outcome:
    """The charge waits for the cardholder: nothing is fulfilled, the invoice stays open, and a
    one-time link (stored hashed in the invoice's details) leads to the authentication."""
    first = attempt.status != AWAITING
    attempt.status = AWAITING
    attempt.gateway_reference = result.reference or attempt.gateway_reference
    attempt.failure_code = "authentication_required"
    attempt.failure_message = result.failure_message
    link = None
    if first:
        secret = secrets.token_urlsafe(24)
        invoice.details = {**invoice.details, "authentication": {
            "attempt": attempt.id, "link": _digest(secret),
            "until": (ctx.clock.now() + AUTHENTICATION_LINK_TTL).isoformat()}}
        link = f"{AUTHENTICATION_PATH}{invoice.id}.{secret}"
        _action_required(session, invoice, attempt, now, on_session=True)
    return Outcome(invoice.id, AWAITING, attempt.failure_code, attempt.failure_message, attempt.id, link)


def _action_required(session: Session, invoice: Invoice, attempt: PaymentAttempt, now: datetime, *,
                     on_session: bool) -> None:
    record_event(session, "invoice.payment_action_required", customer_id=invoice.customer_id, now=now, data={
        "invoice": invoice.id, "attempt": attempt.id, "purpose": invoice.purpose, "amount": attempt.amount,
        "currency": attempt.currency, "off_session": not on_session})


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def redeem_authentication_link(ctx: Context, session: Session, token: str) -> Invoice:
    """Use a one-time link (`<invoice>.<secret>`): once, while its invoice is open, for a day.
    Returns the invoice, whose customer the browser then acts for."""
    invoice_id, _, secret = token.partition(".")
    invoice = session.get(Invoice, invoice_id, with_for_update=True) if invoice_id and secret else None
    stored = (invoice.details or {}).get("authentication") or {} if invoice is not None else {}
    if (invoice is None or invoice.status != "open" or not stored.get("link")
            or not secrets.compare_digest(stored["link"], _digest(secret))
            or ctx.clock.now() >= datetime.fromisoformat(stored["until"])):
        raise NotFound("this link has expired, was already used, or its invoice is no longer open", param="token")
    invoice.details = {**invoice.details, "authentication": {**stored, "link": None}}
    return invoice


def waiting_attempt(session: Session, invoice_id: str) -> PaymentAttempt | None:
    """The invoice's attempt waiting for the cardholder's authentication, if any."""
    return session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.status == AWAITING)
        .order_by(PaymentAttempt.created_at.desc()).limit(1))


def finish_authentication(ctx: Context, attempt_id: str, now: datetime, *, succeeded: bool | None = None) -> Outcome:
    """Settle an attempt that waited for authentication with the gateway's answer: the
    sandbox's own step says `succeeded`; with Stripe.js the browser already did it and the
    gateway is asked (`succeeded` None). Never charges again."""
    with ctx.db.transaction(readonly=True) as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt is None:
            raise NotFound("no such payment", param="attempt")
        session.expunge(attempt)
    if attempt.status != AWAITING:
        return ctx.db.read(lambda session: _outcome_of(session.get(Invoice, attempt.invoice_id), attempt))
    authenticate = getattr(ctx.gateway, "authenticate", None)
    if succeeded is not None and authenticate is not None:
        result = authenticate(attempt.gateway_reference, succeeded=succeeded)
    else:
        result = attempts.find_out(ctx.gateway, attempt, now) or ChargeResult(AWAITING)
    if result.status == "not_found":
        result = ChargeResult("failed", failure_code="authentication_failed", failure_message="The payment is gone.")
    return ctx.db.run(lambda session: settle(ctx, session, attempt_id, result, now))


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
    if attempt.failure_code == "authentication_required":  # off-session: the customer must act
        _action_required(session, invoice, attempt, now, on_session=False)
    if attempt.failure_code in _RETRYABLE:
        return  # nothing is undone: the invoice stays open, to be paid from the page
    FULFILMENT[invoice.purpose].on_failed(ctx, session, invoice, attempt, now)


def _outcome_of(invoice: Invoice, attempt: PaymentAttempt) -> Outcome:
    if attempt.status == "succeeded":
        return Outcome(invoice.id, "paid", attempt_id=attempt.id)
    if attempt.status == "failed":
        return Outcome(invoice.id, "failed", attempt.failure_code, attempt.failure_message, attempt.id)
    if attempt.status == AWAITING:
        return Outcome(invoice.id, AWAITING, attempt.failure_code, attempt.failure_message, attempt.id)
    return Outcome(invoice.id, "unknown", attempt.failure_code, attempt.failure_message, attempt.id)
