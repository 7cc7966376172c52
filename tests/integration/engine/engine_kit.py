"""Integration harness: real-time customers (no test clock) driven by `tick(ctx, now)`.

The context's clock is a FixedClock the test moves; the worker is the public `tick`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.credits.models import CreditLot
from creditflow.customer.service import create_customer
from creditflow.purchase.payment_method import set_payment_method
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice
from creditflow.kit.clock import FixedClock
from creditflow.payment.models import PaymentAttempt, SandboxCharge
from creditflow.payment.sandbox import SandboxGateway
from creditflow.subscription.models import Subscription


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


class Engine:
    def __init__(self, db, start: datetime):
        self.db = db
        self.clock = FixedClock(start)
        self.ctx = Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db), clock=self.clock)
        self._n = 0

    def at(self, when: datetime) -> None:
        self.clock.set(when)

    def customer(self, token: str | None = "pm_card_ok") -> str:
        self._n += 1
        with self.db.transaction() as session:
            customer_id = create_customer(self.ctx, session, external_id=f"rt-{self._n}",
                                          email=f"rt{self._n}@example.com").id
        if token is not None:
            set_payment_method(self.ctx, customer_id, token)
        return customer_id

    # --- reading ------------------------------------------------------------------------

    def _all(self, query):
        with self.db.transaction(readonly=True) as session:
            return list(session.scalars(query))

    def _one(self, query):
        with self.db.transaction(readonly=True) as session:
            return session.scalar(query)

    def sub(self, sub_id: str) -> Subscription:
        with self.db.transaction(readonly=True) as session:
            return session.get(Subscription, sub_id)

    def invoices(self, customer_id: str) -> list[Invoice]:
        return self._all(select(Invoice).where(Invoice.customer_id == customer_id).order_by(Invoice.number))

    def attempts(self, customer_id: str) -> list[PaymentAttempt]:
        return self._all(select(PaymentAttempt).where(PaymentAttempt.customer_id == customer_id)
                         .order_by(PaymentAttempt.created_at, PaymentAttempt.id))

    def charged(self, customer_id: str) -> list[int]:
        return self._all(select(SandboxCharge.amount).where(
            SandboxCharge.customer_ref == customer_id, SandboxCharge.status == "succeeded")
            .order_by(SandboxCharge.created_at, SandboxCharge.id))

    def lots(self, customer_id: str) -> list[CreditLot]:
        return self._all(select(CreditLot).where(CreditLot.customer_id == customer_id,
                                                 CreditLot.kind == "subscription")
                         .order_by(CreditLot.created_at, CreditLot.id))

    def event_count(self, type: str, customer_id: str | None = None) -> int:
        query = select(func.count()).select_from(Event).where(Event.type == type)
        if customer_id is not None:
            query = query.where(Event.customer_id == customer_id)
        return self._one(query)

    def count(self, model) -> int:
        return self._one(select(func.count()).select_from(model))
