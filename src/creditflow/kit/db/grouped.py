"""Group commit on SQLite: small units of work of many threads written in one transaction.

SQLite has one writer at a time, and with `synchronous=FULL` each commit waits for the disk.
Units written one by one are as many commits, and the commits set the rate. Here they wait
together: the thread that takes the writer lock writes every unit waiting, each in a savepoint
of its own, and commits them all at once. A unit never sees another's failure: one that declines
(its work returns None) is rolled back to its savepoint, and the caller takes its general path.

Two ways in:
- `write(db, work)`, for a thread: the unit is written with the others waiting, by this thread
  or by the one that held the lock before it (classic leader and followers).
- `queue(db, work, on_done)`, for an event loop that must not wait: the database's writer
  thread writes the unit, then calls `on_done(result)` after the commit. The thread starts with
  the first unit and ends after `IDLE_SECONDS` without one.

The writer keeps one connection of the engine's out of the pool for good, in autocommit mode, and
gives each unit its DBAPI cursor. If SQLite fails (busy past its timeout, a closed connection),
nothing of the batch was committed: every unit is handed back (None) for its general path, and
the next batch opens a new connection.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any

MAX_UNITS_PER_COMMIT = 64
IDLE_SECONDS = 1.0  # the writer's thread ends after this long without a queued unit

# A unit's statements, run on the writer's cursor: its result, or None to decline (rolled back).
# A sqlite3.Error it lets out fails the whole batch: one it expects (a unique key taken), it catches.
Work = Callable[[sqlite3.Cursor], Any]

log = logging.getLogger("creditflow.db")


class Unit:
    __slots__ = ("work", "on_done", "done", "result")

    def __init__(self, work: Work, on_done: Callable[[Any], None] | None = None):
        self.work = work
        self.on_done = on_done  # for a queued unit: told the result once it is committed
        self.done = False
        self.result: Any = None  # None: nothing written, take the general path


def write(db, work: Work) -> Any:
    """`work`'s result once committed (with whatever else waited), or None if it declined or
    SQLite failed: nothing of it was written."""
    unit = Unit(work)
    writer_of(db).write_with_others(db, unit)
    return unit.result


def queue(db, work: Work, on_done: Callable[[Any], None]) -> None:
    """Hand `work` to the database's writer thread and return at once; `on_done(result)` is
    called from that thread (or from a thread that wrote it with its own) after the commit, with
    None when nothing of it was written."""
    writer_of(db).queue(Unit(work, on_done))


class Writer:
    """A database's units waiting to be written, the connection that writes them, and the thread
    that writes the queued ones."""

    def __init__(self, db):
        self.db = weakref.ref(db)  # the thread must not keep a database alive
        self.waiting: list[Unit] = []
        self.mutex = threading.Lock()
        self.queued = threading.Condition(self.mutex)
        self.thread: threading.Thread | None = None
        self.connection: sqlite3.Connection | None = None

    def queue(self, unit: Unit) -> None:
        with self.mutex:
            self.waiting.append(unit)
            if self.thread is None:
                self.thread = threading.Thread(target=self._drain, name="creditflow-writer", daemon=True)
                self.thread.start()
            elif len(self.waiting) == 1:  # the thread may be waiting for one
                self.queued.notify()

    def write_with_others(self, db, unit: Unit) -> None:
        """Write `unit` in the calling thread, with whatever else waits, unless the thread that
        held the writer lock before has written it already."""
        with self.mutex:
            self.waiting.append(unit)
        with db.writer_lock:
            if not unit.done:
                self._write(db, self._take(first=unit))

    def _take(self, first: Unit | None = None) -> list[Unit]:
        with self.mutex:
            waiting = self.waiting
            if first is not None:
                waiting.remove(first)
                waiting.insert(0, first)
            self.waiting = waiting[MAX_UNITS_PER_COMMIT:]
            return waiting[:MAX_UNITS_PER_COMMIT]

    def _drain(self) -> None:
        while True:
            with self.mutex:
                if not self.waiting and not self.queued.wait_for(lambda: self.waiting, IDLE_SECONDS):
                    self.thread = None
                    return
            db = self.db()
            if db is None:
                return
            with db.writer_lock:
                units = self._take()
                if units:
                    try:
                        self._write(db, units)
                    except Exception:  # noqa: BLE001 - told None already: their general paths answer them
                        log.exception("the grouped writer failed; its units take their general paths")
            del db

    def _write(self, db, units: list[Unit]) -> None:
        """The units in one transaction, under the writer lock; each unit's `result` set (None
        for those that declined) and `done`, and a queued unit's `on_done` told."""
        connection = self.connection
        if connection is None:
            # A connection of the engine's (its pragmas, its driver), taken out of the pool for good.
            pooled = db.engine.raw_connection()
            connection = self.connection = pooled.dbapi_connection
            pooled.detach()
        try:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")  # the connection runs in autocommit mode
            alone = len(units) == 1  # no savepoint needed: declining rolls the transaction back
            for unit in units:
                if not alone:
                    cursor.execute("SAVEPOINT unit")
                unit.result = unit.work(cursor)
                if alone:
                    if unit.result is None:
                        connection.rollback()
                else:
                    if unit.result is None:
                        cursor.execute("ROLLBACK TO unit")
                    cursor.execute("RELEASE unit")
            connection.commit()  # (nothing to commit after a rollback)
        except sqlite3.Error:
            # SQLite busy or failing: nothing was committed. Each unit takes its general path,
            # with its retries; the next units start on a new connection.
            _rollback(connection)
            self.connection = None
            connection.close()
            for unit in units:
                unit.result = None
        except BaseException:
            _rollback(connection)
            for unit in units:
                unit.result = None
            raise
        finally:
            for unit in units:
                unit.done = True
                if unit.on_done is not None:
                    try:
                        unit.on_done(unit.result)
                    except Exception:  # noqa: BLE001 - one caller's failure must not stop the writer
                        log.exception("a queued unit's caller could not be told its result")


def _rollback(connection: sqlite3.Connection) -> None:
    try:
        connection.rollback()
    except sqlite3.Error:
        pass


_writers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Database -> its Writer
_writers_mutex = threading.Lock()
# A child process (a fork) has none of the parent's threads, and must not share its connections.
os.register_at_fork(after_in_child=_writers.clear)


def close(db) -> None:
    """Close the writer's connection of `db`, if it has one (`Database.dispose`): the pool's
    dispose can't, since the writer took its connection out of the pool. A unit written after
    this opens a new one."""
    writer = _writers.get(db)
    if writer is None:
        return
    with db.writer_lock:  # not while a batch is being written on it
        connection, writer.connection = writer.connection, None
    if connection is not None:
        connection.close()


def writer_of(db) -> Writer:
    writer = _writers.get(db)
    if writer is None:
        with _writers_mutex:
            writer = _writers.get(db)
            if writer is None:
                writer = _writers[db] = Writer(db)
    return writer

