"""A small harness: a customer on a test clock, the real engine, the sandbox gateway."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.credits.models import CreditLot
from creditflow.customer.models import Customer
from creditflow.customer.service import create_customer, create_test_clock
from creditflow.purchase.payment_method import set_payment_method
from creditflow.invoicing.models import Invoice
from creditflow.kit.clock import FixedClock
from creditflow.payment.models import SandboxCharge
from creditflow.payment.sandbox import SandboxGateway
from creditflow.subscription.models import Subscription
from creditflow.worker.testclock import advance_test_clock


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


class Story:
    def __init__(self, db, start: datetime, payment_method: str = "pm_card_ok"):
        self.db = db
        self.ctx = Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db), clock=FixedClock(start))
        with db.transaction() as session:
            self.clock_id = create_test_clock(session, start, now=start).id
            self.customer_id = create_customer(self.ctx, session, external_id=f"story-{uuid.uuid4().hex[:8]}", email="s@example.com",
                                               test_clock=self.clock_id).id
        set_payment_method(self.ctx, self.customer_id, payment_method)

    def pay_with(self, token: str) -> None:
        set_payment_method(self.ctx, self.customer_id, token)

    def advance(self, to: datetime) -> None:
        advance_test_clock(self.ctx, self.clock_id, to)

    def sub(self, sub_id: str) -> Subscription:
        with self.db.transaction(readonly=True) as session:
            return session.get(Subscription, sub_id)

    def customer(self) -> Customer:
        with self.db.transaction(readonly=True) as session:
            return session.get(Customer, self.customer_id)

    def invoices(self) -> list[Invoice]:
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(
                select(Invoice).where(Invoice.customer_id == self.customer_id).order_by(Invoice.number)))

    def charged(self) -> list[int]:
        """Amounts the sandbox actually took, in order."""
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(
                select(SandboxCharge.amount).where(SandboxCharge.customer_ref == self.customer_id,
                                                   SandboxCharge.status == "succeeded")
                .order_by(SandboxCharge.created_at)))

    def plan_credits(self) -> str:
        with self.db.transaction(readonly=True) as session:
            total = session.scalar(select(func.coalesce(func.sum(CreditLot.remaining), 0)).where(
                CreditLot.customer_id == self.customer_id, CreditLot.kind == "subscription",
                CreditLot.expired_at.is_(None)))
        return str(total) if not isinstance(total, int) else str(total // 1000)


@pytest.fixture
def story(db):
    return lambda start, payment_method="pm_card_ok": Story(db, start, payment_method)


@pytest.fixture
def sqlite_story(sqlite_db):
    return lambda start, payment_method="pm_card_ok": Story(sqlite_db, start, payment_method)
