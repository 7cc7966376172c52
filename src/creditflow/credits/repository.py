"""Queries over the credit tables, in SQLAlchemy Core.

The spend path runs these thousands of times a second, so every statement is built once, here,
with bind parameters, and executed on the session's connection: no statement construction,
no ORM objects and no ORM execution events per call (SQLAlchemy's compiled cache then does
the rest). They read plain columns; `CreditsColumn` still turns thousandths into `Credits`.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from creditflow.credits.ledger import Lot
from creditflow.credits.models import CreditAccount, CreditEntry, CreditLot, CreditSpend
from creditflow.customer.models import Customer, TestClock
from creditflow.events.models import Event
from creditflow.kit.errors import NotFound
from creditflow.subscription.models import Subscription

accounts = CreditAccount.__table__
lots = CreditLot.__table__
spends = CreditSpend.__table__
entries = CreditEntry.__table__
events = Event.__table__
customers = Customer.__table__
clocks = TestClock.__table__
subscriptions = Subscription.__table__

TOTALS = ("granted", "spent", "expired", "held", "available")


def _execute(session: Session | Connection, statement, params=None):
    """Run a prebuilt statement. A Book passes the session's connection, fetched once."""
    connection = session.connection() if isinstance(session, Session) else session
    return connection.execute(statement, params)


class Fast:
    """A prebuilt Core statement of the spend path, run on the DBAPI cursor of the unit of
    work's connection (same transaction, same SQL, same column types).

    Profiling the benchmark showed SQLAlchemy's per-execution work (execution context,
    parameter and result set-up, psycopg's column descriptions) costing several times the
    database's own work on these one-row statements. So they are compiled once per dialect,
    and the column types' own bind and result processors are applied here: UTCDateTime still
    refuses naive datetimes, CreditsColumn still reads back `Credits`.
    """

    def __init__(self, statement, *, column_keys: list[str] | None = None):
        self.statement = statement
        self.column_keys = column_keys
        self._prepared: dict[str, _Prepared] = {}

    def _prepare(self, dialect) -> "_Prepared":
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            prepared = self._prepared[dialect.name] = _Prepared(self.statement, self.column_keys, dialect)
        return prepared

    def execute(self, cursor: "Cursor", params: dict) -> None:
        prepared = self._prepare(cursor.dialect)
        cursor.raw.execute(prepared.sql, prepared.params(params))

    def executemany(self, cursor: "Cursor", rows: list[dict]) -> None:
        prepared = self._prepare(cursor.dialect)
        if len(rows) == 1:  # most spends draw from one lot; psycopg's executemany pipelines
            cursor.raw.execute(prepared.sql, prepared.params(rows[0]))
        else:
            cursor.raw.executemany(prepared.sql, [prepared.params(row) for row in rows])

    def rows(self, cursor: "Cursor", params: dict) -> list:
        prepared = self._prepare(cursor.dialect)
        cursor.raw.execute(prepared.sql, prepared.params(params))
        return [prepared.row(raw) for raw in cursor.raw.fetchall()]


class _Prepared:
    def __init__(self, statement, column_keys, dialect):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = compiled.string
        self.literals = compiled.construct_params(_check=False)  # the statement's own values
        processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                      for name, bind in compiled.binds.items() if name in self.literals}
        # (name, the statement's own value, processor) in the order the driver wants them
        order = list(compiled.positiontup) if dialect.positional else list(self.literals)
        # A bind without a value of its own must be given: `params[name]` raises if it isn't.
        self.binds = [(name, self.literals[name], processors.get(name), compiled.binds[name].required)
                      for name in order]
        self.keys = None if dialect.positional else order  # psycopg takes a mapping
        if statement.is_select:
            columns = list(statement.selected_columns)
            self.row_type = _row_type(tuple(c.key for c in columns))
            self.results = [(i, c.type.dialect_impl(dialect).result_processor(dialect, None))
                            for i, c in enumerate(columns)]
            self.results = [(i, process) for i, process in self.results if process is not None]

    def params(self, params: dict):
        values = []
        for name, literal, process, required in self.binds:
            value = params[name] if required else params.get(name, literal)
            values.append(value if process is None else process(value))
        return values if self.keys is None else dict(zip(self.keys, values))

    def row(self, raw):
        values = list(raw)
        for i, process in self.results:
            if values[i] is not None:
                values[i] = process(values[i])
        return self.row_type._make(values)


_row_types: dict[tuple, type] = {}


def _row_type(keys: tuple) -> type:
    if keys not in _row_types:
        _row_types[keys] = namedtuple("Row", keys)
    return _row_types[keys]


class Cursor:
    """The DBAPI cursor of a unit of work's connection, for `Fast` statements."""

    def __init__(self, connection: Connection):
        self.dialect = connection.dialect
        self.raw = connection.connection.cursor()


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


_read_account = (
    select(*(accounts.c[name] for name in TOTALS), accounts.c.free_day,
           customers.c.timezone, customers.c.test_clock_id, clocks.c.frozen_time)
    .select_from(accounts.join(customers, customers.c.id == accounts.c.customer_id)
                 .outerjoin(clocks, clocks.c.id == customers.c.test_clock_id))
    .where(accounts.c.customer_id == bindparam("customer_id"))
)
# FOR UPDATE on PostgreSQL; on SQLite the write transaction already holds the write lock.
_lock_account = _read_account.with_for_update(of=accounts)


_fast_lock_account = Fast(_lock_account)


def read_account(session: Session, customer_id: str) -> AccountRow:
    """The account row, unlocked (for reading). NotFound if there is no such customer."""
    return _account_row(customer_id, _execute(session, _read_account, {"customer_id": customer_id}).first())


def lock_account(cursor: Cursor, customer_id: str) -> AccountRow:
    """The account row, locked until commit. NotFound if there is no such customer."""
    rows = _fast_lock_account.rows(cursor, {"customer_id": customer_id})
    return _account_row(customer_id, rows[0] if rows else None)


def _account_row(customer_id: str, row) -> AccountRow:
    if row is None:
        raise NotFound(f"no such customer: {customer_id}", param="customer")
    return AccountRow(
        customer_id=customer_id,
        totals={name: row[i].milli for i, name in enumerate(TOTALS)},
        free_day=row.free_day, timezone=row.timezone, test_clock_id=row.test_clock_id,
        clock_time=row.frozen_time,
    )


_update_account = (
    update(accounts).where(accounts.c.customer_id == bindparam("b_customer_id"))
    .values(**{name: accounts.c[name] + bindparam(f"b_{name}", type_=accounts.c[name].type) for name in TOTALS},
            free_day=bindparam("b_free_day", type_=accounts.c.free_day.type))
)


_fast_update_account = Fast(_update_account)


def update_account(cursor: Cursor, customer_id: str, deltas: dict[str, int], free_day: str | None) -> None:
    """Move the totals by `deltas` (thousandths), in one statement under the account lock."""
    _fast_update_account.execute(cursor, {"b_customer_id": customer_id, "b_free_day": free_day,
                                          **{f"b_{name}": deltas[name] for name in TOTALS}})


# -- what the customer has bought, and their references ---------------------------------------

_active_plan = select(subscriptions.c.plan).where(
    subscriptions.c.customer_id == bindparam("customer_id"), subscriptions.c.status == "active")


def active_plan(session: Session, customer_id: str) -> str | None:
    """The plan of the customer's active paid subscription (cancelling but not ended included)."""
    return _execute(session, _active_plan, {"customer_id": customer_id}).scalar()


_lot_columns = (lots.c.id, lots.c.kind, lots.c.granted, lots.c.remaining, lots.c.expires_at, lots.c.expired_at,
                lots.c.created_at)

_spend_plan_and_lots = (
    select(spends, subscriptions.c.plan.label("active_plan"),
           *(lots.c[name].label(f"lot_{name}") for name in ("id", "kind", "remaining", "expires_at", "created_at")))
    .select_from(
        accounts
        .outerjoin(spends, and_(spends.c.customer_id == accounts.c.customer_id,
                                spends.c.reference == bindparam("reference")))
        .outerjoin(subscriptions, and_(subscriptions.c.customer_id == accounts.c.customer_id,
                                       subscriptions.c.status == "active"))
        .outerjoin(lots, and_(lots.c.customer_id == accounts.c.customer_id, lots.c.remaining > 0))
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


_fast_spend_plan_and_lots = Fast(_spend_plan_and_lots)


def spend_plan_and_lots(cursor: Cursor, customer_id: str, reference: str):
    """In one round trip, what a spend or a hold needs after locking the account: the spend or
    hold already made with this reference (or None), the active plan (or None) and the open
    lots (one row per lot).

    Run in a statement of its own after the lock: PostgreSQL re-reads only the locked row of a
    FOR UPDATE join after waiting for the lock, not the rows joined to it."""
    rows = _fast_spend_plan_and_lots.rows(cursor, {"customer_id": customer_id, "reference": reference})
    if not rows:
        return None, None, []
    first = rows[0]
    open_lots = [LotRow(r.lot_id, r.lot_kind, r.lot_remaining, r.lot_expires_at, r.lot_created_at)
                 for r in rows if r.lot_id is not None]
    return (first if first.id is not None else None), first.active_plan, open_lots


_spend_by_reference = select(spends).where(spends.c.customer_id == bindparam("customer_id"),
                                           spends.c.reference == bindparam("reference"))
_spend_by_id = select(spends).where(spends.c.id == bindparam("id"))


def spend_by_reference(session: Session, customer_id: str, reference: str):
    return _execute(session, _spend_by_reference, {"customer_id": customer_id, "reference": reference}).first()


def spend_by_id(session: Session, spend_id: str):
    return _execute(session, _spend_by_id, {"id": spend_id}).first()


_insert_spend = Fast(insert(spends).inline(), column_keys=[c.key for c in spends.columns])


def insert_spend(cursor: Cursor, **values) -> None:
    _insert_spend.execute(cursor, values)


_overdue_holds = (
    select(spends).where(spends.c.customer_id == bindparam("customer_id"), spends.c.status == "held",
                         spends.c.expires_at <= bindparam("now", type_=spends.c.expires_at.type))
    .order_by(spends.c.expires_at, spends.c.id)
)


def overdue_holds(session: Session, customer_id: str, now: datetime) -> list:
    return _execute(session, _overdue_holds, {"customer_id": customer_id, "now": now}).all()


_expire_holds = (update(spends).where(spends.c.id == bindparam("b_id"))
                 .values(status="expired", resolved_at=bindparam("b_at", type_=spends.c.resolved_at.type)))


def mark_holds_expired(session: Session, holds: list[dict]) -> None:
    """`holds`: [{"b_id": hold id, "b_at": when it expired}]."""
    _execute(session, _expire_holds, holds)


# -- lots, entries, events --------------------------------------------------------------------

_open_lots = select(*_lot_columns).where(lots.c.customer_id == bindparam("customer_id"), lots.c.remaining > 0)
_lots_by_id = select(*_lot_columns).where(lots.c.customer_id == bindparam("customer_id"),
                                          lots.c.id.in_(bindparam("ids", expanding=True)))


def open_lots(session: Session, customer_id: str) -> list:
    """Lots with credits left (overdue ones included: the caller expires them)."""
    return _execute(session, _open_lots, {"customer_id": customer_id}).all()


def lots_by_id(session: Session, customer_id: str, lot_ids: list[str]) -> list:
    return _execute(session, _lots_by_id, {"customer_id": customer_id, "ids": list(lot_ids)}).all()


_insert_lots = insert(lots)
_update_lot = (
    update(lots).where(lots.c.id == bindparam("b_id"))
    .values(remaining=lots.c.remaining + bindparam("b_delta", type_=lots.c.remaining.type),
            expired_at=func.coalesce(lots.c.expired_at, bindparam("b_expired_at", type_=lots.c.expired_at.type)))
)
_fast_update_lot = Fast(_update_lot)
_insert_entries = Fast(insert(entries).inline(), column_keys=[c.key for c in entries.columns if c.key != "seq"])
_insert_events = insert(events)


def insert_lots(session: Session, rows: list[dict]) -> None:
    _execute(session, _insert_lots, rows)


def update_lots(cursor: Cursor, changes: list[dict]) -> None:
    """`changes`: [{"b_id", "b_delta" (thousandths), "b_expired_at" (None: leave as is)}]."""
    _fast_update_lot.executemany(cursor, changes)


def insert_entries(cursor: Cursor, rows: list[dict]) -> None:
    _insert_entries.executemany(cursor, rows)


def insert_events(session: Session, rows: list[dict]) -> None:
    _execute(session, _insert_events, rows)


def as_lot(row) -> Lot:
    return Lot(row.id, row.kind, row.remaining, row.expires_at, row.created_at)
