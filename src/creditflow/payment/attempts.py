"""Payment attempts: written before the gateway is called, settled with its answer.

An attempt is committed as `pending` by the purchase that needs it, and only then is the
gateway called, outside any transaction, with the attempt's id as the idempotency key: asking
again after a crash or a timeout returns the first outcome instead of charging twice. The
answer is recorded on the attempt in a new transaction. An answer that never came (`unknown`,
or a `pending` attempt abandoned by a stopped process) is found out later with `find_out`.

This package knows nothing of what a payment is for; the purchase layer does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from creditflow.kit import metrics
from creditflow.kit.ids import new_id
from creditflow.payment.gateway import ChargeRequest, ChargeResult, Gateway
from creditflow.payment.models import PaymentAttempt

# A pending attempt older than this was abandoned by a stopped process: find out what became of it.
STALE_PENDING = timedelta(minutes=10)


@dataclass(frozen=True)
class Ticket:
    """A committed pending attempt, ready to be sent to the gateway."""

    attempt_id: str
    invoice_id: str
    request: ChargeRequest


def new_attempt(session: Session, *, invoice_id: str, customer_id: str, test_clock_id: str | None, amount: int,
                currency: str, payment_method: str | None, now: datetime) -> PaymentAttempt:
    attempt = PaymentAttempt(
        id=new_id("pay"), invoice_id=invoice_id, customer_id=customer_id, test_clock_id=test_clock_id,
        amount=amount, currency=currency, status="pending", payment_method=payment_method, created_at=now,
    )
    session.add(attempt)
    return attempt


def charge(gateway: Gateway, ticket: Ticket) -> ChargeResult:
    """Send a committed attempt to the gateway. Never inside a transaction."""
    try:
        result = gateway.charge(ticket.request)
    except Exception as exc:  # network trouble: we can't know whether it charged
        result = ChargeResult("unknown", failure_code="gateway_error", failure_message=str(exc)[:500])
    return metrics.count_payment(result)


def fail(attempt: PaymentAttempt, code: str, message: str, now: datetime) -> None:
    attempt.status = "failed"
    attempt.failure_code = code
    attempt.failure_message = message
    attempt.completed_at = now


def record_result(attempt: PaymentAttempt, result: ChargeResult, now: datetime) -> None:
    """Write the gateway's answer on a locked, unsettled attempt."""
    attempt.gateway_reference = result.reference or attempt.gateway_reference
    if result.status == "succeeded":
        attempt.status = "succeeded"
        attempt.completed_at = now
    elif result.status == "failed":
        fail(attempt, result.failure_code or "card_declined", result.failure_message or "The payment was declined.",
             now)
    else:
        attempt.status = "unknown"
        attempt.failure_code = result.failure_code
        attempt.failure_message = result.failure_message


def lock_attempt(session: Session, attempt_id: str) -> PaymentAttempt:
    return session.get(PaymentAttempt, attempt_id, with_for_update=True, populate_existing=True)


def is_settled(attempt: PaymentAttempt) -> bool:
    return attempt.status in ("succeeded", "failed")


def find_out(gateway: Gateway, attempt: PaymentAttempt, now: datetime) -> ChargeResult | None:
    """Ask the gateway what became of an unknown or abandoned attempt (read beforehand, in a
    transaction of its own). Returns the answer to record, or None while it can't be known.

    A charge the gateway never saw is answered as failed (`not_charged`): the attempt is over,
    and a new attempt charges again. Never charges."""
    try:
        found = gateway.lookup(attempt.id, attempt.gateway_reference)
    except Exception:  # noqa: BLE001 - no answer yet; asked again later
        return None
    if found.status == "not_found" and attempt.status == "unknown" and now - attempt.created_at < STALE_PENDING:
        # A processor may still be working on a request whose answer we lost; "not found" only
        # becomes "never charged" once the attempt is old enough.
        return None
    if found.status == "not_found":
        return ChargeResult("failed", failure_code="not_charged",
                            failure_message="The payment never reached the gateway.")
    if found.status == "unknown":
        return None
    return found


def unsettled_attempts(session: Session, now: datetime, *, test_clock_id: str | None = None) -> list[str]:
    """Attempts to find out about: unknown ones, and pending ones abandoned long enough ago, of
    customers on that test clock (or, with None, on real time)."""
    query = select(PaymentAttempt.id).where(or_(
        PaymentAttempt.status == "unknown",
        (PaymentAttempt.status == "pending") & (PaymentAttempt.created_at <= now - STALE_PENDING),
    ))
    if test_clock_id is None:
        query = query.where(PaymentAttempt.test_clock_id.is_(None))
    else:
        query = query.where(PaymentAttempt.test_clock_id == test_clock_id)
    return list(session.scalars(query.order_by(PaymentAttempt.created_at).limit(500)))


def pending_attempt(session: Session, invoice_id: str) -> PaymentAttempt | None:
    """The invoice's attempt still waiting for an answer (pending or unknown), if any."""
    return session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.status.in_(("pending", "unknown"))).limit(1))


def charge_reference(session: Session, invoice_id: str) -> str | None:
    """The gateway's reference of the invoice's successful charge (what a refund refunds)."""
    return session.scalar(select(PaymentAttempt.gateway_reference).where(
        PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.status == "succeeded"))


# --- reading, for invoices and pages --------------------------------------------------------------


def attempts_by_invoice(session: Session, invoice_ids: list[str]) -> dict[str, list[PaymentAttempt]]:
    """Each invoice's payment attempts, oldest first (an invoice never charged has none)."""
    found: dict[str, list[PaymentAttempt]] = {invoice_id: [] for invoice_id in invoice_ids}
    if not invoice_ids:
        return found
    rows = session.scalars(select(PaymentAttempt).where(PaymentAttempt.invoice_id.in_(invoice_ids))
                           .order_by(PaymentAttempt.created_at, PaymentAttempt.id))
    for attempt in rows:
        found[attempt.invoice_id].append(attempt)
    return found


def last_failure(session: Session, customer_id: str) -> PaymentAttempt | None:
    """The customer's most recent failed attempt: why their last payment didn't go through."""
    return session.scalar(select(PaymentAttempt).where(
        PaymentAttempt.customer_id == customer_id, PaymentAttempt.status == "failed")
        .order_by(PaymentAttempt.created_at.desc(), PaymentAttempt.id.desc()).limit(1))
