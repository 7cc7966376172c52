"""Scenario harness: customers living on test clocks, the real engine, the sandbox gateway.

Everything is read back from the database (never from the objects the services returned), so
a scenario asserts what was committed. Every scenario runs on SQLite and on PostgreSQL through
the `db` fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.credits.models import CreditAccount, CreditEntry, CreditLot
from creditflow.customer.models import TestClock
from creditflow.customer.service import create_customer, create_test_clock
from creditflow.purchase.payment_method import set_payment_method
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice
from creditflow.kit.clock import FixedClock
from creditflow.kit.credits import Credits
from creditflow.payment.models import PaymentAttempt, SandboxCharge
from creditflow.payment.sandbox import SandboxGateway
from creditflow.subscription.models import Subscription
from creditflow.subscription.repository import current_plan_code, live_subscription
from creditflow.worker.testclock import advance_test_clock


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def credits(whole: int) -> Credits:
    return Credits.whole(whole)


@dataclass
class Shopper:
    """One customer on their own test clock."""

    world: "World"
    id: str
    clock_id: str

    # --- acting -------------------------------------------------------------------------

    def pay_with(self, token: str) -> None:
        set_payment_method(self.world.ctx, self.id, token)

    def advance(self, to: datetime) -> None:
        advance_test_clock(self.world.ctx, self.clock_id, to)

    # --- reading ------------------------------------------------------------------------

    def _all(self, query):
        with self.world.db.transaction(readonly=True) as session:
            return list(session.scalars(query))

    def now(self) -> datetime:
        with self.world.db.transaction(readonly=True) as session:
            return session.get(TestClock, self.clock_id).frozen_time

    def subscriptions(self) -> list[Subscription]:
        return self._all(select(Subscription).where(Subscription.customer_id == self.id)
                         .order_by(Subscription.created_at))

    def sub(self) -> Subscription:
        subs = self.subscriptions()
        assert len(subs) == 1, subs
        return subs[0]

    def live(self) -> Subscription | None:
        with self.world.db.transaction(readonly=True) as session:
            return live_subscription(session, self.id)

    def plan(self) -> str:
        with self.world.db.transaction(readonly=True) as session:
            return current_plan_code(session, self.id)

    def invoices(self) -> list[Invoice]:
        return self._all(select(Invoice).where(Invoice.customer_id == self.id).order_by(Invoice.number))

    def attempts(self) -> list[PaymentAttempt]:
        return self._all(select(PaymentAttempt).where(PaymentAttempt.customer_id == self.id)
                         .order_by(PaymentAttempt.created_at, PaymentAttempt.id))

    def attempt_times(self) -> list[datetime]:
        return [a.created_at for a in self.attempts()]

    def sandbox_charges(self) -> list[SandboxCharge]:
        """Everything the sandbox saw for this customer, declined charges included."""
        return self._all(select(SandboxCharge).where(SandboxCharge.customer_ref == self.id)
                         .order_by(SandboxCharge.created_at, SandboxCharge.id))

    def charged(self) -> list[int]:
        """Amounts the sandbox actually took, in order."""
        return [c.amount for c in self.sandbox_charges() if c.status == "succeeded"]

    def lots(self, kind: str | None = "subscription") -> list[CreditLot]:
        """Plan-credit lots by default (free daily credits are another issue's story)."""
        query = select(CreditLot).where(CreditLot.customer_id == self.id)
        if kind is not None:
            query = query.where(CreditLot.kind == kind)
        return self._all(query.order_by(CreditLot.created_at, CreditLot.id))

    def live_lots(self) -> list[CreditLot]:
        return [lot for lot in self.lots() if lot.expired_at is None]

    def plan_credits(self) -> Credits:
        """Credits available in unexpired subscription lots, from the lots themselves."""
        return sum((lot.remaining for lot in self.live_lots() if lot.kind == "subscription"), Credits(0))

    def account(self) -> CreditAccount:
        with self.world.db.transaction(readonly=True) as session:
            return session.get(CreditAccount, self.id)

    def entries(self, *, plan_only: bool = True) -> list[CreditEntry]:
        """Ledger entries, by default only those of plan-credit lots."""
        query = select(CreditEntry).where(CreditEntry.customer_id == self.id)
        if plan_only:
            query = query.where(CreditEntry.lot_id.in_(
                select(CreditLot.id).where(CreditLot.customer_id == self.id, CreditLot.kind == "subscription")))
        return self._all(query.order_by(CreditEntry.seq))

    def events(self, type: str | None = None, *, plan_only: bool = True) -> list[Event]:
        """Events in the order they were written; by default credit events of other lot kinds
        (free daily credits) are left out."""
        query = select(Event).where(Event.customer_id == self.id).order_by(Event.seq)
        if type is not None:
            query = query.where(Event.type == type)
        events = self._all(query)
        if plan_only:
            events = [e for e in events
                      if not e.type.startswith("credits.") or e.data.get("kind") == "subscription"]
        return events

    def event_types(self) -> list[str]:
        return [e.type for e in self.events()]

    def assert_ledger_balanced(self) -> None:
        """Conservation for this customer: the account equals its entries, and the lots agree."""
        account = self.account()
        sums: dict[str, Credits] = {}
        for entry in self.entries(plan_only=False):
            sums[entry.kind] = sums.get(entry.kind, Credits(0)) + entry.amount
        zero = Credits(0)
        assert account.granted == sums.get("grant", zero)
        assert account.expired == sums.get("expire", zero)
        assert account.granted == account.spent + account.expired + account.held + account.available
        live = [lot for lot in self.lots(kind=None) if lot.expired_at is None]
        assert account.available == sum((lot.remaining for lot in live), zero)


class World:
    def __init__(self, db):
        self.db = db
        self.ctx = Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db),
                           clock=FixedClock(utc(2020, 1, 1)))
        self._n = 0

    def shopper(self, start: datetime, token: str | None = "pm_card_ok") -> Shopper:
        """A new customer attached to a new test clock frozen at `start`."""
        self._n += 1
        with self.db.transaction() as session:
            clock_id = create_test_clock(session, start, now=start).id
            customer_id = create_customer(self.ctx, session, external_id=f"shopper-{self._n}",
                                          email=f"shopper{self._n}@example.com", test_clock=clock_id).id
        shopper = Shopper(self, customer_id, clock_id)
        if token is not None:
            shopper.pay_with(token)
        return shopper

    def count(self, model) -> int:
        with self.db.transaction(readonly=True) as session:
            return session.scalar(select(func.count()).select_from(model))

    def counts(self) -> dict[str, int]:
        """How many rows every table that a purchase writes holds."""
        return {model.__tablename__: self.count(model) for model in (
            Subscription, Invoice, PaymentAttempt, SandboxCharge, CreditLot, CreditEntry, Event)}


def spend_function():
    """The credit ledger's spend use case, once it exists (another issue), else None."""
    import importlib

    for module in ("creditflow.credits.spend", "creditflow.credits.service"):
        try:
            spend = getattr(importlib.import_module(module), "spend_credits", None)
        except ImportError:
            continue
        if spend is not None:
            return spend
    return None
