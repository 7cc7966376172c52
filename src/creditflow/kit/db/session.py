"""Engine set-up and the unit of work.

Only entry points (an HTTP request, a job, a CLI command) open a transaction with
`Database.transaction()`; services flush but never commit. Payment use cases are the one
exception by design: they commit the attempt before calling the gateway (never inside a transaction), so they
open their own short transactions around the call.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from creditflow.kit.db import grouped
from creditflow.kit.db.statements import StatementConnections

DEFAULT_SQLITE_FILE = "creditflow.db"
MAX_OVERFLOW = 20  # connections beyond pool_size, per pool


def default_database_url() -> str:
    return os.environ.get("CREDITFLOW_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_FILE}"


def is_postgres(engine_or_session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


def _configure_sqlite(engine: Engine) -> None:
    """WAL, synchronous=FULL and BEGIN IMMEDIATE for every write transaction.

    Under SQLite's default deferred BEGIN, two read-then-write transactions can both read and
    one then fails or loses its update; IMMEDIATE takes the write lock up front so writers
    queue behind `busy_timeout` instead. Read-only units of work begin DEFERRED.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = "DEFERRED" if conn.get_execution_options().get("creditflow_readonly") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    def __init__(self, url: str | None = None, *, echo: bool = False, pool_size: int = 10):
        self.url = url or default_database_url()
        if self.url.startswith("sqlite"):
            self.engine = create_engine(
                self.url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}
            )
            _configure_sqlite(self.engine)
        else:
            # No pre-ping: it would cost a round trip per transaction (the credit spend is one
            # round trip in all). A connection the server dropped fails its first statement
            # instead; SQLAlchemy then invalidates the pool and `run` retries on a new one.
            self.engine = create_engine(
                self.url, echo=echo, pool_size=pool_size, max_overflow=MAX_OVERFLOW, pool_pre_ping=False
            )
        self._write_lock = threading.RLock()
        # PostgreSQL: autocommit connections for single-statement units of work, as many at
        # most as the engine's pool (kit/db/statements.py); none is opened until needed.
        self.statements = None if self.is_sqlite else StatementConnections(self.engine.url, pool_size + MAX_OVERFLOW)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(creditflow_readonly=True), expire_on_commit=False
        )

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def writer_lock(self) -> threading.RLock | None:
        """SQLite: the lock this process's writers queue on (see `transaction`), for units of
        work that open their own transactions; None on PostgreSQL, which locks rows."""
        return self._write_lock if self.is_sqlite else None

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any exception."""
        # SQLite has one writer at a time. Threads of this process queue on a lock, which wakes
        # the next one the moment the writer commits, instead of each sleeping in SQLite's busy
        # handler (whose back-off makes the latency tail long). Other processes still queue on
        # busy_timeout. Re-entrant, so behaviour inside a thread is unchanged.
        lock = self._write_lock if (self.is_sqlite and not readonly) else None
        if lock is not None:
            lock.acquire()
        session = (self._read_sessions if readonly else self._sessions)()
        try:
            yield session
            if readonly and session.new | session.dirty | session.deleted:
                raise RuntimeError("a read-only unit of work tried to write")
            # A read-only unit of work commits too: rollback would expire the loaded objects.
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if lock is not None:
                lock.release()

    def read(self, work):
        """`work(session)` in a read-only unit of work: what an entry point uses to call a read
        such as a balance, which takes the caller's session and never opens its own."""
        with self.transaction(readonly=True) as session:
            return work(session)

    def run(self, work, *, retries: int = 5):
        """Run `work(session)` in a transaction, retrying PostgreSQL deadlocks/serialization
        failures, SQLite busy errors and a connection lost before the commit (a server
        restart), which are safe to retry because nothing committed. A connection lost during
        the commit is not retried: the work may have been committed. The driver's own errors
        (statements sent on the raw cursor, as the credit ledger does) are retried the same way
        when they are a deadlock or a serialization failure."""
        for attempt in range(retries + 1):
            committing = False
            try:
                with self.transaction() as session:
                    result = work(session)
                    committing = True
                return result
            except (OperationalError, DBAPIError, psycopg.Error) as exc:
                lost = isinstance(exc, DBAPIError) and exc.connection_invalidated and not committing
                if attempt == retries or not (lost or _is_retryable(exc)):
                    raise
                time.sleep(0.01 * (2**attempt))

    def dispose(self) -> None:
        """Close every connection: the pool's, the grouped writer's (SQLite) and the statement
        connections (PostgreSQL). The database can still be used: it opens new ones."""
        self.engine.dispose()
        if self.is_sqlite:
            grouped.close(self)
        if self.statements is not None:
            self.statements.close()


def _is_retryable(exc: DBAPIError | psycopg.Error) -> bool:
    code = getattr(exc.orig if isinstance(exc, DBAPIError) else exc, "sqlstate", None)
    if code in {"40001", "40P01"}:
        return True
    return "database is locked" in str(exc).lower()
