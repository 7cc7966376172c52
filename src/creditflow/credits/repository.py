"""Queries over the credit tables: SQLAlchemy Core statements, run on the DBAPI cursor.

The spend path runs these thousands of times a second. Profiling `bench/spend.py` showed
SQLAlchemy's per-execution work (statement construction, the execution context, parameter and
result set-up, psycopg's column descriptions) costing several times the database's own work on
these one-row statements. So every statement is built once, here, compiled once per dialect
and run on the DBAPI cursor of the unit of work (kit/db/compiled.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from creditflow.credits.models import CreditAccount, CreditEntry, CreditLot, CreditSpend
from creditflow.customer.models import Customer, TestClock
from creditflow.events.models import Event
from creditflow.kit.db.compiled import CompiledStatement, UnitCursor
from creditflow.kit.errors import NotFound

accounts = CreditAccount.__table__
lots = CreditLot.__table__
spends = CreditSpend.__table__
entries = CreditEntry.__table__
events = Event.__table__
customers = Customer.__table__
clocks = TestClock.__table__

TOTALS = ("granted", "spent", "expired", "held", "available")


# -- the account ------------------------------------------------------------------------------

@dataclass
class AccountRow:
    """A customer's credit account with what the spend path needs to know about the customer."""

    customer_id: str
    totals: dict[str, int]  # thousandths
    free_day: str | None
    timezone: str
    test_clock_id: str | None
    clock_time: datetime | None  # the test clock's frozen time, if the customer has one
    plan: str | None = None  # the plan of the customer's active subscription; None on Free


_read_account = (
    select(*(accounts.c[name] for name in TOTALS), accounts.c.free_day, accounts.c.plan,
           customers.c.timezone, customers.c.test_clock_id, clocks.c.frozen_time)
    .select_from(accounts.join(customers, customers.c.id == accounts.c.customer_id)
                 .outerjoin(clocks, clocks.c.id == customers.c.test_clock_id))
    .where(accounts.c.customer_id == bindparam("customer_id"))
)
_fast_read_account = CompiledStatement(_read_account)
# FOR UPDATE on PostgreSQL; on SQLite the write transaction already holds the write lock.
_fast_lock_account = CompiledStatement(_read_account.with_for_update(of=accounts))
_read_customer = CompiledStatement(
    select(customers.c.timezone, customers.c.test_clock_id, clocks.c.frozen_time)
    .select_from(customers.outerjoin(clocks, clocks.c.id == customers.c.test_clock_id))
    .where(customers.c.id == bindparam("customer_id")))
_NEW_ACCOUNT = {name: 0 for name in TOTALS} | {"free_day": None, "plan": None}
_open_account = {
    "postgresql": CompiledStatement(pg_insert(accounts).values(
        customer_id=bindparam("customer_id"), **_NEW_ACCOUNT).on_conflict_do_nothing()),
    "sqlite": CompiledStatement(sqlite_insert(accounts).values(
        customer_id=bindparam("customer_id"), **_NEW_ACCOUNT).on_conflict_do_nothing()),
}


def read_account(cursor: UnitCursor, customer_id: str) -> AccountRow:
    """The account row, unlocked (for reading); all zeros for a customer whose account is not
    open yet. NotFound if there is no such customer."""
    row = _fast_read_account.first(cursor, {"customer_id": customer_id})
    if row is None:
        customer = _read_customer.first(cursor, {"customer_id": customer_id})
        if customer is None:
            raise NotFound(f"no such customer: {customer_id}", param="customer")
        return AccountRow(customer_id, dict.fromkeys(TOTALS, 0), None, customer.timezone, customer.test_clock_id,
                          customer.frozen_time)
    return _account_row(customer_id, row)


def lock_account(cursor: UnitCursor, customer_id: str) -> AccountRow:
    """The account row, locked until commit. NotFound if there is no such customer.

    A customer's account is opened by the first change that needs it (a grant, a spend), so the
    customer package knows nothing of credits; opening it twice at once is harmless."""
    row = _fast_lock_account.first(cursor, {"customer_id": customer_id})
    if row is None:
        if _read_customer.first(cursor, {"customer_id": customer_id}) is None:
            raise NotFound(f"no such customer: {customer_id}", param="customer")
        _open_account[cursor.dialect.name].execute(cursor, {"customer_id": customer_id})
        row = _fast_lock_account.first(cursor, {"customer_id": customer_id})
    return _account_row(customer_id, row)


def _account_row(customer_id: str, row) -> AccountRow:
    if row is None:
        raise NotFound(f"no such customer: {customer_id}", param="customer")
    return AccountRow(
        customer_id=customer_id,
        totals={name: row[i].milli for i, name in enumerate(TOTALS)},
        free_day=row.free_day, timezone=row.timezone, test_clock_id=row.test_clock_id,
        clock_time=row.frozen_time, plan=row.plan,
    )


_update_account = CompiledStatement(
    update(accounts).where(accounts.c.customer_id == bindparam("b_customer_id"))
    .values(**{name: accounts.c[name] + bindparam(f"b_{name}", type_=accounts.c[name].type) for name in TOTALS},
            free_day=bindparam("b_free_day", type_=accounts.c.free_day.type))
)


def update_account(cursor: UnitCursor, customer_id: str, deltas: dict[str, int], free_day: str | None) -> None:
    """Move the totals by `deltas` (thousandths), in one statement under the account lock."""
    _update_account.execute(cursor, {"b_customer_id": customer_id, "b_free_day": free_day,
                                     **{f"b_{name}": deltas[name] for name in TOTALS}})


# -- what the customer has bought, their spends and holds -------------------------------------

# Constants are written into the SQL rather than bound: a generic (prepared) plan can then use
# the partial indexes (`expired_at IS NULL`, `status = 'held'`), and there is less to bind.
# Open lots are asked for as `remaining > 0 AND expired_at IS NULL` (the second follows from
# the first, ck_credit_lots_expired_lots_are_empty) so that the planner takes ix_credit_lots_open.
HELD, ZERO = literal_column("'held'"), literal_column("0")

_set_plan = CompiledStatement(update(accounts).where(accounts.c.customer_id == bindparam("b_customer_id"))
                              .values(plan=bindparam("b_plan", type_=accounts.c.plan.type)))


def set_plan(cursor: UnitCursor, customer_id: str, plan: str | None) -> None:
    """Record the plan of the customer's active subscription (None: Free), under the account lock."""
    _set_plan.execute(cursor, {"b_customer_id": customer_id, "b_plan": plan})


_spend_plan_and_lots = CompiledStatement(
    select(spends, accounts.c.plan.label("active_plan"),
           *(lots.c[name].label(f"lot_{name}") for name in ("id", "kind", "remaining", "expires_at", "created_at")))
    .select_from(
        accounts
        .outerjoin(spends, and_(spends.c.customer_id == accounts.c.customer_id,
                                spends.c.reference == bindparam("reference")))
        .outerjoin(lots, and_(lots.c.customer_id == accounts.c.customer_id, lots.c.remaining > ZERO,
                              lots.c.expired_at.is_(None)))
    )
    .where(accounts.c.customer_id == bindparam("customer_id"))
)


@dataclass(frozen=True)
class LotRow:
    id: str
    kind: str
    remaining: object
    expires_at: datetime | None
    created_at: datetime
    expired_at: None = None  # a lot with credits left hasn't expired (ck_credit_lots_expired_lots_are_empty)


def spend_plan_and_lots(cursor: UnitCursor, customer_id: str, reference: str):
    """In one round trip, what a spend or a hold needs after locking the account: the spend or
    hold already made with this reference (or None), the active plan (or None) and the open
    lots (one row per lot).

    Run in a statement of its own after the lock: PostgreSQL re-reads only the locked row of a
    FOR UPDATE join after waiting for the lock, not the rows joined to it."""
    rows = _spend_plan_and_lots.rows(cursor, {"customer_id": customer_id, "reference": reference})
    if not rows:
        return None, None, []
    first = rows[0]
    open_lots = [LotRow(r.lot_id, r.lot_kind, r.lot_remaining, r.lot_expires_at, r.lot_created_at)
                 for r in rows if r.lot_id is not None]
    return (first if first.id is not None else None), first.active_plan, open_lots


_spend_by_reference = CompiledStatement(select(spends).where(spends.c.customer_id == bindparam("customer_id"),
                                                spends.c.reference == bindparam("reference")))
_spend_by_id = CompiledStatement(select(spends).where(spends.c.id == bindparam("id")))
_insert_spend = CompiledStatement(insert(spends).inline())


def spend_by_reference(cursor: UnitCursor, customer_id: str, reference: str):
    return _spend_by_reference.first(cursor, {"customer_id": customer_id, "reference": reference})


def spend_by_id(cursor: UnitCursor, spend_id: str):
    return _spend_by_id.first(cursor, {"id": spend_id})


def insert_spend(cursor: UnitCursor, **values) -> None:
    _insert_spend.execute(cursor, values)


_mark_refunded = CompiledStatement(update(spends).where(spends.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"), refunded_at=bindparam("b_at", type_=spends.c.refunded_at.type)))
_resolve_hold = CompiledStatement(update(spends).where(spends.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"), settled=bindparam("b_settled", type_=spends.c.settled.type),
    resolved_at=bindparam("b_at", type_=spends.c.resolved_at.type)))


def mark_refunded(cursor: UnitCursor, spend_id: str, *, status: str, at: datetime) -> None:
    _mark_refunded.execute(cursor, {"b_id": spend_id, "b_status": status, "b_at": at})


def resolve_holds(cursor: UnitCursor, holds: list[dict]) -> None:
    """`holds`: [{"b_id", "b_status" (settled, released, expired), "b_settled", "b_at"}]."""
    _resolve_hold.executemany(cursor, holds)


_overdue_holds = CompiledStatement(
    select(spends).where(spends.c.customer_id == bindparam("customer_id"), spends.c.status == HELD,
                         spends.c.expires_at <= bindparam("now", type_=spends.c.expires_at.type))
    .order_by(spends.c.expires_at, spends.c.id)
)


def overdue_holds(cursor: UnitCursor, customer_id: str, now: datetime) -> list:
    return _overdue_holds.rows(cursor, {"customer_id": customer_id, "now": now})


# -- lots, entries, events --------------------------------------------------------------------

_lot_columns = (lots.c.id, lots.c.kind, lots.c.granted, lots.c.remaining, lots.c.expires_at, lots.c.expired_at,
                lots.c.created_at)
_open_lots = CompiledStatement(select(*_lot_columns).where(lots.c.customer_id == bindparam("customer_id"),
                                              lots.c.remaining > ZERO, lots.c.expired_at.is_(None)))
_lot_by_id = CompiledStatement(select(*_lot_columns).where(lots.c.customer_id == bindparam("customer_id"),
                                              lots.c.id == bindparam("id")))
_lot = CompiledStatement(select(lots).where(lots.c.id == bindparam("id")))
_lot_by_grant_key = CompiledStatement(select(lots).where(lots.c.grant_key == bindparam("grant_key")))
_overdue_lots = CompiledStatement(select(lots.c.id, lots.c.expires_at).where(
    lots.c.customer_id == bindparam("customer_id"), lots.c.expired_at.is_(None),
    lots.c.expires_at <= bindparam("now", type_=lots.c.expires_at.type)))


def open_lots(cursor: UnitCursor, customer_id: str) -> list:
    """Lots with credits left (overdue ones included: the caller expires them)."""
    return _open_lots.rows(cursor, {"customer_id": customer_id})


def lots_by_id(cursor: UnitCursor, customer_id: str, lot_ids: list[str]) -> list:
    """The customer's lots with these ids (refunds and releases: a lot or two, so one by one)."""
    found = (_lot_by_id.first(cursor, {"customer_id": customer_id, "id": lot_id}) for lot_id in lot_ids)
    return [row for row in found if row is not None]


def lot(cursor: UnitCursor, lot_id: str):
    return _lot.first(cursor, {"id": lot_id})


def lot_by_grant_key(cursor: UnitCursor, grant_key: str):
    return _lot_by_grant_key.first(cursor, {"grant_key": grant_key})


def overdue_lots(cursor: UnitCursor, customer_id: str, now: datetime) -> list:
    """Lots past their expiry not yet marked expired, whether or not credits are left."""
    return _overdue_lots.rows(cursor, {"customer_id": customer_id, "now": now})


_insert_lots = CompiledStatement(insert(lots).inline())
_update_lot = CompiledStatement(
    update(lots).where(lots.c.id == bindparam("b_id"))
    .values(remaining=lots.c.remaining + bindparam("b_delta", type_=lots.c.remaining.type),
            expired_at=func.coalesce(lots.c.expired_at, bindparam("b_expired_at", type_=lots.c.expired_at.type)))
)
_insert_entries = CompiledStatement(insert(entries).inline())
_insert_events = CompiledStatement(insert(events).inline())


def insert_lots(cursor: UnitCursor, rows: list[dict]) -> None:
    _insert_lots.executemany(cursor, rows)


def update_lots(cursor: UnitCursor, changes: list[dict]) -> None:
    """`changes`: [{"b_id", "b_delta" (thousandths), "b_expired_at" (None: leave as is)}]."""
    _update_lot.executemany(cursor, changes)


def insert_entries(cursor: UnitCursor, rows: list[dict]) -> None:
    _insert_entries.executemany(cursor, rows)


def insert_events(cursor: UnitCursor, rows: list[dict]) -> None:
    _insert_events.executemany(cursor, rows)
