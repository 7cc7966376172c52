"""The refund tests' harness: a customer on a test clock, on the real engine with the sandbox
gateway; with what refund tests read: invoices, refunds, events, lots, what the sandbox charged
and gave back, and the conservation check (granted = spent + expired + held + available).
The fixture is in conftest.py."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.credits.check import check_ledger
from creditflow.credits.models import CreditLot
from creditflow.credits.spend import spend_credits
from creditflow.customer.service import create_customer, create_test_clock
from creditflow.purchase.payment_method import set_payment_method
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice
from creditflow.kit.clock import FixedClock
from creditflow.kit.credits import Credits
from creditflow.payment.gateway import RefundResult
from creditflow.payment.models import SandboxCharge
from creditflow.payment.sandbox import SandboxGateway
from creditflow.refund.models import Refund
from creditflow.subscription.models import Subscription
from creditflow.worker.testclock import advance_test_clock


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


class FlakySandbox(SandboxGateway):
    """The sandbox, whose refunds can be made to fail (`refuse`) or to lose their answer
    (`lose`: raises before the sandbox is asked, as a timeout on the way there would)."""

    def __init__(self, db):
        super().__init__(db)
        self.mode: str | None = None
        self.refund_calls: list[str] = []

    def refund(self, *, reference, amount, idempotency_key):
        self.refund_calls.append(idempotency_key)
        if self.mode == "lose":
            raise TimeoutError("the gateway did not answer")
        if self.mode == "refuse":
            return RefundResult("failed", failure_message="the bank refused the refund")
        return super().refund(reference=reference, amount=amount, idempotency_key=idempotency_key)


class Story:
    def __init__(self, db, start: datetime, payment_method: str = "pm_card_ok"):
        self.db = db
        self.gateway = FlakySandbox(db)
        self.ctx = Context(db=db, catalog=load_catalog(), gateway=self.gateway, clock=FixedClock(start))
        with db.transaction() as session:
            self.clock_id = create_test_clock(session, start, now=start).id
            self.customer_id = create_customer(self.ctx, session, external_id=f"refund-{uuid.uuid4().hex[:8]}",
                                               email="r@example.com", test_clock=self.clock_id).id
        set_payment_method(self.ctx, self.customer_id, payment_method)
        self._spends = 0

    def advance(self, to: datetime) -> None:
        advance_test_clock(self.ctx, self.clock_id, to)

    def spend(self, amount: str, feature: str = "standard_models") -> str:
        self._spends += 1
        reference = f"job-{self._spends}"
        spend_credits(self.ctx, self.customer_id, amount=amount, feature=feature, reference=reference)
        return reference

    def sub(self, sub_id: str) -> Subscription:
        with self.db.transaction(readonly=True) as session:
            return session.get(Subscription, sub_id)

    def invoices(self, purpose: str | None = None) -> list[Invoice]:
        with self.db.transaction(readonly=True) as session:
            query = select(Invoice).where(Invoice.customer_id == self.customer_id)
            if purpose is not None:
                query = query.where(Invoice.purpose == purpose)
            return list(session.scalars(query.order_by(Invoice.number)))

    def invoice(self, invoice_id: str) -> Invoice:
        with self.db.transaction(readonly=True) as session:
            return session.get(Invoice, invoice_id)

    def refunds(self) -> list[Refund]:
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(
                select(Refund).where(Refund.customer_id == self.customer_id).order_by(Refund.created_at, Refund.id)))

    def events(self, type_: str) -> list[Event]:
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(select(Event).where(
                Event.customer_id == self.customer_id, Event.type == type_).order_by(Event.seq)))

    def lot(self, lot_id: str) -> CreditLot:
        with self.db.transaction(readonly=True) as session:
            return session.get(CreditLot, lot_id)

    def live_credits(self, kind: str) -> Credits:
        with self.db.transaction(readonly=True) as session:
            total = session.scalar(select(func.coalesce(func.sum(CreditLot.remaining), 0)).where(
                CreditLot.customer_id == self.customer_id, CreditLot.kind == kind, CreditLot.expired_at.is_(None)))
        return total if isinstance(total, Credits) else Credits(int(total))

    def sandbox(self) -> list[tuple[int, int]]:
        """(amount charged, amount refunded) of each successful sandbox charge, in order."""
        with self.db.transaction(readonly=True) as session:
            return [(c.amount, c.amount_refunded) for c in session.scalars(
                select(SandboxCharge).where(SandboxCharge.customer_ref == self.customer_id,
                                            SandboxCharge.status == "succeeded")
                .order_by(SandboxCharge.created_at, SandboxCharge.id))]

    def ledger_problems(self) -> list[str]:
        with self.db.transaction(readonly=True) as session:
            return check_ledger(session)
