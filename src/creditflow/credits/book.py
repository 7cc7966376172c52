"""One customer's credits, worked on under the account lock.

A `Book` is opened by locking the customer's credit account row; every change (draws, returns,
grants, expiries) is applied in memory, then `flush()` writes it in a handful of statements:
the lots, the ledger entries, the events and one update of the account totals. Because every
change of a lot goes through the totals here (or through `grants`, under the same lock), the
totals always equal the sums of the entries.

A plain spend on SQLite (nothing due but its draws) is written by `write_plain_spend` at the end
of this module, the same rows a book would flush, in five statements of its own.

Time-driven effects that are due (a hold past its expiry, a lot past its expiry) are applied
when the book is loaded, stamped with the instant they became due, so the ledger reads the
same whether the worker or a later spend got there first.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TypeVar

import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from creditflow.credits import repository as repo
from creditflow.credits.access import FreeDay
from creditflow.credits.ledger import Draw, Lot, draws_from_json, draws_to_json
from creditflow.kit.clock import format_instant
from creditflow.kit.credits import Credits
from creditflow.kit.ids import new_id
from creditflow.team.usage import give_back as give_back_usage

T = TypeVar("T")


def run(ctx, work: Callable[[repo.UnitCursor], T], *, retries: int = 5) -> T:
    """`work(cursor)` in one write transaction: the unit of work of the credit use cases.

    Everything a Book does is a `repository.CompiledStatement` statement, so the transaction is held on a
    pooled DBAPI connection directly, without an ORM session or a Core connection around it
    (together they cost about as much as the spend itself). It behaves as `Database.run`: the same engine and pool, the same queue of this process's
    SQLite writers and BEGIN IMMEDIATE, and the same retries of deadlocks, serialization
    failures, a busy SQLite and a connection lost before the commit, which are safe to retry
    because nothing was committed."""
    db = ctx.db
    lock = db.writer_lock
    for attempt in range(retries + 1):
        committing = False
        if lock is not None:
            lock.acquire()
        connection = db.engine.raw_connection()
        try:
            cursor = repo.UnitCursor(db.engine.dialect, connection.cursor())
            if lock is not None:
                cursor.raw.execute("BEGIN IMMEDIATE")  # the connection runs in autocommit mode
            result = work(cursor)
            committing = True
            connection.commit()
            return result
        except BaseException as exc:
            lost = _lost(db, connection, exc)
            if not lost:
                _rollback(connection)
            if attempt == retries or not ((lost and not committing) or _retryable(exc)):
                raise
        finally:
            connection.close()
            if lock is not None:
                lock.release()
        time.sleep(0.01 * (2**attempt))
    raise AssertionError("unreachable")


def run_statement(ctx, work: Callable[[repo.UnitCursor], T], *, retries: int = 5) -> T:
    """`work(cursor)`: one statement that is its own transaction (PostgreSQL, autocommit, on
    `Database.statements`), so that it costs a single round trip. Only for statements that are
    safe to send again after a connection was lost, even if the first one committed (the spend
    function is: by reference)."""
    db = ctx.db
    dialect = db.engine.dialect
    for attempt in range(retries + 1):
        connection = None
        try:
            with db.statements.cursor() as cursor:
                connection = cursor.connection
                return work(repo.UnitCursor(dialect, cursor))
        except psycopg.Error as exc:
            lost = connection is not None and (connection.broken or connection.closed)
            if attempt == retries or not (lost or _retryable(exc)):
                raise
        time.sleep(0.01 * (2**attempt))
    raise AssertionError("unreachable")


def _lost(db, connection, exc: BaseException) -> bool:
    """Whether `exc` says the connection is gone; if so it is invalidated (and the pool with it,
    as SQLAlchemy does for a lost connection: the others were probably dropped too)."""
    if not isinstance(exc, Exception) or not db.engine.dialect.is_disconnect(exc, connection.dbapi_connection, None):
        return False
    connection.invalidate(exc)
    db.engine.dispose(close=False)  # a new pool; checked-out connections are dropped on return
    return True


def _rollback(connection) -> None:
    try:
        connection.rollback()
    except Exception:  # noqa: BLE001 - the connection is broken; the pool discards it
        pass


def _retryable(exc: BaseException) -> bool:
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(original, psycopg.Error):
        return getattr(original, "sqlstate", None) in {"40001", "40P01"}
    return isinstance(original, sqlite3.OperationalError) and "database is locked" in str(original).lower()


@dataclass
class _Lot:
    id: str
    kind: str
    remaining: int
    expires_at: datetime | None
    expired_at: datetime | None
    created_at: datetime
    delta: int = 0
    expiring: bool = False  # expired_at to be written
    new: dict | None = None  # the row to insert, for a lot granted in this book

    def overdue(self, now: datetime) -> bool:
        return self.expired_at is None and self.expires_at is not None and self.expires_at <= now

    def live(self, now: datetime) -> bool:
        return self.expired_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass
class Book:
    cursor: repo.UnitCursor  # the unit of work's: every statement of the book runs on it
    account: repo.AccountRow
    now: datetime
    deltas: dict[str, int] = field(default_factory=lambda: dict.fromkeys(repo.TOTALS, 0))
    lots: dict[str, _Lot] = field(default_factory=dict)
    entries: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    resolved_holds: list[dict] = field(default_factory=list)
    free_day: str | None = None

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def lock(cls, ctx, db: repo.UnitCursor | Session | Connection, customer_id: str, *,
             now: datetime | None = None) -> "Book":
        """Lock the customer's credit account; NotFound for an unknown customer. `db` is the
        unit of work: the cursor `run()` gives, or an ORM session or Core connection."""
        if isinstance(db, Session):
            db.flush()  # anything the ORM holds for these tables goes first
        cursor = db if isinstance(db, repo.UnitCursor) else repo.UnitCursor.of(db)
        account = repo.lock_account(cursor, customer_id)
        return cls(cursor, account, now or account.clock_time or ctx.clock.now(), free_day=account.free_day)

    def load(self, open_lots: list | None = None) -> "Book":
        """Read the open lots (unless given, as read with the account's other state) and apply
        what has become due: overdue holds are released (status `expired`), overdue lots expire."""
        for row in repo.open_lots(self.cursor, self.customer_id) if open_lots is None else open_lots:
            self._add_row(row)
        if self.account.totals["held"] > 0:
            for hold in repo.overdue_holds(self.cursor, self.customer_id, self.now):
                self.ensure_lots(d["lot"] for d in hold.draws)
                self.give_back(draws_from_json(hold.draws), "release", hold.reference, at=hold.expires_at)
                self.resolve_hold(hold.id, "expired", at=hold.expires_at, reference=hold.reference,
                                  amount=hold.amount)
                give_back_usage(self.cursor, self.customer_id, hold.reference, None, now=self.now)  # a member's usage
        self.expire_overdue()
        return self

    def ensure_lots(self, lot_ids: Iterable[str]) -> None:
        missing = [lot_id for lot_id in set(lot_ids) if lot_id not in self.lots]
        if missing:
            for row in repo.lots_by_id(self.cursor, self.customer_id, missing):
                self._add_row(row)

    def _add_row(self, row) -> None:
        self.lots[row.id] = _Lot(row.id, row.kind, row.remaining.milli, row.expires_at, row.expired_at,
                                 row.created_at)

    # -- reading ------------------------------------------------------------------------------

    @property
    def customer_id(self) -> str:
        return self.account.customer_id

    def total(self, name: str) -> int:
        return self.account.totals[name] + self.deltas[name]

    @property
    def available(self) -> Credits:
        return Credits(self.total("available"))

    def eligible(self, kinds: frozenset[str]) -> list[Lot]:
        """Live lots with credits left, of the kinds that may pay."""
        return [Lot(lot.id, lot.kind, Credits(lot.remaining), lot.expires_at, lot.created_at)
                for lot in self.lots.values()
                if lot.remaining > 0 and lot.kind in kinds and lot.live(self.now)]

    # -- changing -----------------------------------------------------------------------------

    def grant(self, kind: str, amount: Credits, *, expires_at: datetime | None, grant_key: str | None,
              reason: str | None = None, invoice_id: str | None = None, subscription_id: str | None = None,
              event_data: dict | None = None, lot_id: str | None = None) -> str:
        lot_id = lot_id or new_id("lot")
        row = {"id": lot_id, "customer_id": self.customer_id, "kind": kind, "granted": amount.milli,
               "remaining": amount.milli, "expires_at": expires_at, "expired_at": None,
               "subscription_id": subscription_id, "invoice_id": invoice_id, "grant_key": grant_key,
               "reason": reason, "created_at": self.now}
        self.lots[lot_id] = _Lot(lot_id, kind, amount.milli, expires_at, None, self.now, new=row)
        self._entry("grant", amount.milli, lot_id, grant_key)
        self._move(granted=amount.milli, available=amount.milli)
        self._event("credits.granted", {"lot": lot_id, "kind": kind, "amount": str(amount),
                                        "expires_at": format_instant(expires_at),
                                        **(event_data or {})})
        return lot_id

    def ensure_free_credits(self, daily: Credits, day: FreeDay) -> str | None:
        """Today's free lot, created on first need; yesterday's has expired at midnight."""
        if self.free_day == day.key or not daily:
            return None
        self.free_day = day.key
        return self.grant("free", daily, expires_at=day.ends_at, grant_key=f"free:{self.customer_id}:{day.key}",
                          lot_id=day.lot_id(self.customer_id))

    def take(self, draws: Sequence[Draw], kind: str, reference: str) -> None:
        """Draw credits out of lots: `spend` (spent) or `hold` (held)."""
        target = {"spend": "spent", "hold": "held"}[kind]
        for draw in draws:
            lot = self.lots[draw.lot_id]
            if draw.amount.milli > lot.remaining or not lot.live(self.now):
                raise AssertionError(f"draw {draw} exceeds lot {lot.id}")  # allocate() prevents it
            lot.remaining -= draw.amount.milli
            lot.delta -= draw.amount.milli
            self._entry(kind, draw.amount.milli, lot.id, reference)
            self._move(**{target: draw.amount.milli, "available": -draw.amount.milli})

    def give_back(self, draws: Sequence[Draw], kind: str, reference: str, *, at: datetime | None = None) -> int:
        """Return credits to the lots they came from: `refund` (from spent) or `release` (from
        held). What returns to a lot that has expired meanwhile is recorded as expired.
        Returns the amount that expired that way."""
        source = {"refund": "spent", "release": "held"}[kind]
        lost = 0
        for draw in draws:
            lot = self.lots[draw.lot_id]
            amount = draw.amount.milli
            lot.remaining += amount
            lot.delta += amount
            self._entry(kind, amount, lot.id, reference, at=at)
            self._move(**{source: -amount, "available": amount})
            if lot.expired_at is not None:
                lot.remaining -= amount
                lot.delta -= amount
                self._entry("expire", amount, lot.id, None, at=at)
                self._move(expired=amount, available=-amount)
                lost += amount
            elif lot.overdue(self.now):
                lost += amount  # expire_overdue() takes it with the rest of the lot
        return lost

    def take_nothing(self, kind: str, reference: str) -> None:
        """A spend or a hold of 0 credits (inside an unlimited window): one ledger line of 0, no lot,
        so the ledger shows it like any other while no total moves."""
        self._entry(kind, 0, None, reference)

    def settle(self, draws: Sequence[Draw], reference: str) -> None:
        """Held credits become spent."""
        for draw in draws:
            self._entry("settle", draw.amount.milli, draw.lot_id, reference)
            self._move(held=-draw.amount.milli, spent=draw.amount.milli)

    def expire_overdue(self) -> int:
        """Expire every loaded lot whose expiry has passed, at that instant."""
        count = 0
        for lot in self.lots.values():
            if lot.overdue(self.now):
                self.expire(lot.id, at=lot.expires_at)
                count += 1
        return count

    def expire(self, lot_id: str, *, at: datetime) -> int:
        lot = self.lots[lot_id]
        amount = lot.remaining
        lot.remaining = 0
        lot.delta -= amount
        lot.expired_at = at
        lot.expiring = True
        if amount:
            self._entry("expire", amount, lot.id, None, at=at)
            self._move(expired=amount, available=-amount)
            self._event("credits.expired", {"lot": lot.id, "kind": lot.kind, "amount": str(Credits(amount))}, at=at)
        return amount

    def _move(self, **amounts: int) -> None:
        for name, amount in amounts.items():
            self.deltas[name] += amount

    def _entry(self, kind: str, amount: int, lot_id: str | None, reference: str | None, *,
               at: datetime | None = None) -> None:
        self.entries.append({"id": new_id("cre"), "customer_id": self.customer_id, "lot_id": lot_id,
                             "kind": kind, "amount": amount, "reference": reference,
                             "created_at": at or self.now})

    def _event(self, type_: str, data: dict, *, at: datetime | None = None) -> None:
        self.events.append({"id": new_id("evt"), "type": type_, "customer_id": self.customer_id,
                            "data": data, "created_at": at or self.now})

    def record(self, type_: str, data: dict) -> None:
        """An event of the use case (a spend, a hold, a refund), written with the book."""
        self._event(type_, data)

    # -- writing ------------------------------------------------------------------------------

    def resolve_hold(self, hold_id: str, status: str, *, at: datetime, reference: str, amount: Credits,
                     settled: Credits | None = None) -> None:
        """Record a hold's end (settled, released, expired) and its event with the rest of the
        book. `amount` is what was held."""
        self.resolved_holds.append({"b_id": hold_id, "b_status": status, "b_settled": settled, "b_at": at})
        data = {"hold": hold_id, "reference": reference, "amount": str(amount)}
        if settled is not None:
            data |= {"settled": str(settled), "released": str(amount - settled)}
        self._event(f"credits.hold_{status}", data, at=at)

    def flush(self) -> None:
        self.expire_overdue()
        cursor = self.cursor
        new_lots = [lot.new for lot in self.lots.values() if lot.new is not None]
        for row in new_lots:  # a lot granted and drawn in the same book is inserted as it ends up
            lot = self.lots[row["id"]]
            row["remaining"], row["expired_at"] = lot.remaining, lot.expired_at
        if new_lots:
            repo.insert_lots(cursor, new_lots)
        changed = [{"b_id": lot.id, "b_delta": lot.delta, "b_expired_at": lot.expired_at if lot.expiring else None}
                   for lot in self.lots.values() if lot.new is None and (lot.delta or lot.expiring)]
        if changed:
            repo.update_lots(cursor, changed)
        if self.entries:
            repo.insert_entries(cursor, self.entries)
        if self.events:
            repo.insert_events(cursor, self.events)
        if self.resolved_holds:
            repo.resolve_holds(cursor, self.resolved_holds)
        if any(self.deltas.values()) or self.free_day != self.account.free_day:
            repo.update_account(cursor, self.customer_id, self.deltas, self.free_day)
        # Written: later changes in this book start from here.
        for name, delta in self.deltas.items():
            self.account.totals[name] += delta
            self.deltas[name] = 0
        self.account.free_day = self.free_day
        for lot in self.lots.values():
            lot.delta, lot.expiring, lot.new = 0, False, None
        self.entries, self.events, self.resolved_holds = [], [], []


# The plain spend on SQLite (credits/spend.py says when a spend is one: nothing held, no lot past
# its expiry, today's free credits already created, a feature no plan limits). Its writes are
# few and always the same, so they are sent as SQLite statements of their own with positional
# values, bound as the general path's column types store them (thousandths as integers; the
# instant formatted once by the column type; the JSON serialised by the column type): the same
# rows, byte for byte, as `Book.flush` and `take_and_record` write, without running every value
# of five statements through the generic parameter processing. A lot's update leaves
# `expired_at` alone rather than setting it to itself, so SQLite does not rewrite the lot's
# entries in the indexes that name `expired_at`.
_TAKE_FROM_LOT = "UPDATE credit_lots SET remaining = remaining - ? WHERE id = ?"
_INSERT_ENTRY = ("INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
                 "VALUES (?, ?, ?, 'spend', ?, ?, ?)")
_INSERT_EVENT = ("INSERT INTO events (id, type, customer_id, data, created_at, dispatched, notified) "
                 "VALUES (?, 'credits.spent', ?, ?, ?, 0, 0)")
_MOVE_TOTALS = "UPDATE credit_accounts SET spent = spent + ?, available = available - ? WHERE customer_id = ?"
_INSERT_SPEND = ("INSERT INTO credit_spends (id, customer_id, kind, reference, feature, amount, settled, status, "
                 "draws, balance_after, expires_at, created_at, resolved_at, refunded_at, queue) "
                 "VALUES (?, ?, 'spend', ?, ?, ?, NULL, 'spent', ?, ?, NULL, ?, NULL, NULL, NULL)")


class _PlainSpendValues:
    """The column types' own conversions of what a plain spend writes, looked up once."""

    def __init__(self, dialect):
        def bind(column):
            return column.type.dialect_impl(dialect).bind_processor(dialect)

        self.instant = bind(repo.spends.c.created_at)  # every instant the plain spend writes is the same
        self.event_data = bind(repo.events.c.data)
        self.draws = bind(repo.spends.c.draws)


@lru_cache(maxsize=8)
def _plain_spend_values(dialect) -> _PlainSpendValues:
    return _PlainSpendValues(dialect)


def write_plain_spend(cursor: repo.UnitCursor, customer_id: str, amount: Credits, feature: str, reference: str,
                      draws: Sequence[Draw], available: int, now: datetime) -> tuple[str, Credits]:
    """The rows of a plain spend, as the book's `flush` and `take_and_record` write them: the
    lots drawn, a ledger line for each, the event, the account's totals and the spend. Returns
    the spend's id and the balance after it (`available` was the balance before, in thousandths)."""
    raw, values = cursor.raw, _plain_spend_values(cursor.dialect)
    spend_id = new_id("spd")
    at = values.instant(now)
    balance = Credits(available - amount.milli)
    for draw in draws:
        raw.execute(_TAKE_FROM_LOT, (draw.amount.milli, draw.lot_id))
    for draw in draws:
        raw.execute(_INSERT_ENTRY, (new_id("cre"), customer_id, draw.lot_id, draw.amount.milli, reference, at))
    data = {"spend": spend_id, "reference": reference, "feature": feature, "amount": str(amount),
            "balance": str(balance)}
    raw.execute(_INSERT_EVENT, (new_id("evt"), customer_id, values.event_data(data), at))
    raw.execute(_MOVE_TOTALS, (amount.milli, amount.milli, customer_id))
    raw.execute(_INSERT_SPEND, (spend_id, customer_id, reference, feature, amount.milli,
                                values.draws(draws_to_json(draws)), balance.milli, at))
    return spend_id, balance
