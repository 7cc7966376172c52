"""Queries over the credit tables, in SQLAlchemy Core: the spend path runs them thousands of
times a second, so they select plain columns rather than loading ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from creditflow.credits.ledger import Lot
from creditflow.credits.models import CreditAccount, CreditLot, CreditSpend
from creditflow.customer.models import Customer, TestClock
from creditflow.kit.errors import NotFound
from creditflow.subscription.models import Subscription

accounts = CreditAccount.__table__
lots = CreditLot.__table__
spends = CreditSpend.__table__
customers = Customer.__table__
clocks = TestClock.__table__
subscriptions = Subscription.__table__

TOTALS = ("granted", "spent", "expired", "held", "available")


@dataclass
class AccountRow:
    """A customer's credit account with what the spend path needs to know about the customer."""

    customer_id: str
    totals: dict[str, int]  # thousandths
    free_day: str | None
    timezone: str
    test_clock_id: str | None
    clock_time: datetime | None  # the test clock's frozen time, if the customer has one


_account_columns = (
    *(accounts.c[name] for name in TOTALS), accounts.c.free_day,
    customers.c.timezone, customers.c.test_clock_id, clocks.c.frozen_time,
)
_account_from = accounts.join(customers, customers.c.id == accounts.c.customer_id).outerjoin(
    clocks, clocks.c.id == customers.c.test_clock_id)


def read_account(session: Session, customer_id: str, *, lock: bool) -> AccountRow:
    """The account row, locked until commit with `lock` (FOR UPDATE on PostgreSQL; on SQLite
    the write transaction already holds the database's write lock). NotFound if no customer."""
    query = select(*_account_columns).select_from(_account_from).where(accounts.c.customer_id == customer_id)
    if lock:
        query = query.with_for_update(of=accounts)
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"no such customer: {customer_id}", param="customer")
    return AccountRow(
        customer_id=customer_id,
        totals={name: row[i].milli for i, name in enumerate(TOTALS)},
        free_day=row.free_day, timezone=row.timezone, test_clock_id=row.test_clock_id,
        clock_time=row.frozen_time,
    )


def active_plan(session: Session, customer_id: str) -> str | None:
    """The plan of the customer's active paid subscription (cancelling but not ended included)."""
    return session.scalar(select(subscriptions.c.plan).where(
        subscriptions.c.customer_id == customer_id, subscriptions.c.status == "active"))


def spend_and_plan(session: Session, customer_id: str, reference: str):
    """In one round trip: the spend or hold with this reference (or None), and the active plan.

    Run after the account is locked, so that both are read as of after the lock was granted
    (PostgreSQL re-reads only the locked row of a FOR UPDATE join, not the joined ones)."""
    query = (
        select(spends, subscriptions.c.plan.label("active_plan"))
        .select_from(
            accounts
            .outerjoin(spends, and_(spends.c.customer_id == accounts.c.customer_id,
                                    spends.c.reference == reference))
            .outerjoin(subscriptions, and_(subscriptions.c.customer_id == accounts.c.customer_id,
                                           subscriptions.c.status == "active"))
        )
        .where(accounts.c.customer_id == customer_id)
    )
    row = session.execute(query).first()
    spend = row if row is not None and row.id is not None else None
    return spend, (row.active_plan if row is not None else None)


def open_lots(session: Session, customer_id: str) -> list:
    """Lots with credits left (overdue ones included: the caller expires them)."""
    return session.execute(
        select(lots.c.id, lots.c.kind, lots.c.granted, lots.c.remaining, lots.c.expires_at,
               lots.c.expired_at, lots.c.created_at)
        .where(lots.c.customer_id == customer_id, lots.c.remaining > 0)
    ).all()


def lots_by_id(session: Session, customer_id: str, lot_ids: list[str]) -> list:
    return session.execute(
        select(lots.c.id, lots.c.kind, lots.c.granted, lots.c.remaining, lots.c.expires_at,
               lots.c.expired_at, lots.c.created_at)
        .where(lots.c.customer_id == customer_id, lots.c.id.in_(lot_ids))
    ).all()


def spend_by_reference(session: Session, customer_id: str, reference: str):
    return session.execute(
        select(spends).where(spends.c.customer_id == customer_id, spends.c.reference == reference)
    ).first()


def spend_by_id(session: Session, spend_id: str):
    return session.execute(select(spends).where(spends.c.id == spend_id)).first()


def overdue_holds(session: Session, customer_id: str, now: datetime) -> list:
    return session.execute(
        select(spends).where(spends.c.customer_id == customer_id, spends.c.status == "held",
                             spends.c.expires_at <= now)
        .order_by(spends.c.expires_at, spends.c.id)
    ).all()


def as_lot(row) -> Lot:
    return Lot(row.id, row.kind, row.remaining, row.expires_at, row.created_at)
