"""The sandbox gateway: a product feature for trying every payment path without a processor.

Test payment methods:
- `pm_card_ok` succeeds;
- `pm_card_declined` declines every charge;
- `pm_card_timeout` charges, then times out before answering: the outcome is unknown until
  reconciled with `lookup`, which reports the charge;
- `pm_card_ok_then_declined` succeeds once, then declines;
- `pm_card_authenticate` needs 3-D Secure for every payment: on-session the charge waits for
  the cardholder (`requires_action`) until the sandbox's own authentication step completes or
  fails it (`authenticate`); off-session it fails with `authentication_required`.

Its book of charges lives in the database, in transactions of its own (as a remote service
would), so every process sees the same sandbox and idempotency keys hold across them.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from creditflow.kit.db import Database
from creditflow.kit.errors import InvalidRequest
from creditflow.kit.ids import new_id
from creditflow.payment.gateway import AttachedMethod, Card, ChargeRequest, ChargeResult, RefundResult
from creditflow.payment.models import SandboxCharge, SandboxRefund

# Each test payment method is a test card, shown as such (the numbers of the usual test cards).
CARDS = {
    "pm_card_ok": Card("visa", "4242", 12, 2034),
    "pm_card_declined": Card("visa", "0002", 12, 2034),
    "pm_card_timeout": Card("visa", "0341", 12, 2034),
    "pm_card_ok_then_declined": Card("mastercard", "4444", 12, 2034),
    "pm_card_authenticate": Card("visa", "3155", 12, 2034),
}
AUTHENTICATE = "pm_card_authenticate"
TOKENS = tuple(CARDS)


class SandboxGateway:
    name = "sandbox"

    def __init__(self, db: Database):
        self.db = db

    def attach_payment_method(self, *, customer_id, gateway_customer_id, email, token):
        if token not in TOKENS:
            raise InvalidRequest(
                f"unknown sandbox payment method {token!r}; use one of {', '.join(TOKENS)}", param="token"
            )
        return AttachedMethod(gateway_customer_id or f"sandbox_{customer_id}", token, CARDS[token])

    def charge(self, request: ChargeRequest) -> ChargeResult:
        existing = self._record(request)
        if request.payment_method == "pm_card_timeout":
            # The charge went through but the answer never came back.
            return ChargeResult("unknown", failure_code="timeout", failure_message="gateway timed out")
        return _result(existing)

    def authenticate(self, reference: str, *, succeeded: bool) -> ChargeResult:
        """The cardholder completed (or failed) the 3-D Secure step of a charge waiting for it.
        Asking again answers as the first time."""
        with self.db.transaction() as session:
            charge = session.get(SandboxCharge, reference, with_for_update=True)
            if charge is None:
                return ChargeResult("not_found")
            if charge.status == "requires_action":
                charge.status = "succeeded" if succeeded else "failed"
                charge.failure_code = None if succeeded else "authentication_failed"
            return _result(charge)

    def lookup(self, idempotency_key: str, reference: str | None) -> ChargeResult:
        found = self._find(idempotency_key)
        return ChargeResult("not_found") if found is None else _result(found)

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> RefundResult:
        try:
            with self.db.transaction() as session:
                earlier = session.scalar(select(SandboxRefund).where(SandboxRefund.idempotency_key == idempotency_key))
                if earlier is not None:  # a retry: answer as the first time, pay nothing more
                    return RefundResult("succeeded", reference=earlier.id)
                charge = session.get(SandboxCharge, reference, with_for_update=True)
                if charge is None or charge.status != "succeeded":
                    return RefundResult("failed", failure_message="no such successful charge")
                if charge.amount_refunded + amount > charge.amount:
                    return RefundResult("failed", failure_message="refund exceeds the charge")
                charge.amount_refunded += amount
                refund = SandboxRefund(id=new_id("sbre"), idempotency_key=idempotency_key, charge_id=charge.id,
                                       amount=amount, created_at=datetime.now(timezone.utc))
                session.add(refund)
                return RefundResult("succeeded", reference=refund.id)
        except IntegrityError:  # a concurrent retry with the same key won
            return self.refund(reference=reference, amount=amount, idempotency_key=idempotency_key)

    def _find(self, key: str) -> SandboxCharge | None:
        with self.db.transaction(readonly=True) as session:
            return session.scalar(select(SandboxCharge).where(SandboxCharge.idempotency_key == key))

    def _record(self, request: ChargeRequest) -> SandboxCharge:
        """The charge for this idempotency key: the one recorded earlier, or a new one. One
        transaction, as one request to a remote gateway."""
        try:
            with self.db.transaction() as session:
                recorded = session.scalar(
                    select(SandboxCharge).where(SandboxCharge.idempotency_key == request.idempotency_key))
                if recorded is not None:
                    return recorded
                declined = request.payment_method == "pm_card_declined"
                status, failure = ("failed", "card_declined") if declined else ("succeeded", None)
                if request.payment_method == AUTHENTICATE:
                    status, failure = (("requires_action", "authentication_required") if request.on_session
                                       else ("failed", "authentication_required"))
                if request.payment_method == "pm_card_ok_then_declined":
                    earlier = session.scalar(
                        select(func.count()).select_from(SandboxCharge).where(
                            SandboxCharge.customer_ref == request.customer_id,
                            SandboxCharge.payment_method == request.payment_method,
                            SandboxCharge.status == "succeeded",
                        )
                    )
                    if earlier > 0:
                        status, failure = "failed", "card_declined"
                charge = SandboxCharge(
                    id=new_id("sbch"), idempotency_key=request.idempotency_key,
                    customer_ref=request.customer_id, payment_method=request.payment_method,
                    amount=request.amount, currency=request.currency,
                    status=status, failure_code=failure,
                    created_at=datetime.now(timezone.utc),
                )
                session.add(charge)
            return charge
        except IntegrityError:
            # A concurrent call with the same key won the race: answer with its outcome.
            found = self._find(request.idempotency_key)
            assert found is not None
            return found


_FAILURE_MESSAGES = {
    "authentication_required": "The card needs the cardholder's authentication (3-D Secure).",
    "authentication_failed": "The card's authentication (3-D Secure) failed.",
}


def _result(charge: SandboxCharge) -> ChargeResult:
    if charge.status == "succeeded":
        return ChargeResult("succeeded", reference=charge.id)
    if charge.status == "requires_action":
        return ChargeResult("requires_action", reference=charge.id, failure_code="authentication_required",
                            failure_message=_FAILURE_MESSAGES["authentication_required"])
    return ChargeResult("failed", reference=charge.id, failure_code=charge.failure_code,
                        failure_message=_FAILURE_MESSAGES.get(charge.failure_code, "Your card was declined."))
