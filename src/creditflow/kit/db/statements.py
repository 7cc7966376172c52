"""PostgreSQL connections for units of work that are a single statement (autocommit).

The credit spend on PostgreSQL is one call of a database function, which is its own
transaction. Taking a connection from SQLAlchemy's pool for it, switching it to autocommit and
back, and opening a cursor cost about as much client CPU as the driver's own work for the call
(bench/spend.py). These connections stay in autocommit mode and keep their cursor, so a
statement costs a list pop, the round trip and a list push.

The pool is small and bounded like the engine's (`size` connections at most, created on first
need), is reset in a forked child, and drops a connection the server has closed: the caller
decides whether the statement may be sent again (see `credits.book.run_statement`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import URL


class StatementConnections:
    def __init__(self, url: URL, size: int):
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: list[tuple[psycopg.Connection, psycopg.Cursor]] = []
        self._slots = threading.BoundedSemaphore(self._size)

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor]:
        """A cursor on an autocommit connection, for one statement and its result."""
        if self._pid != os.getpid():  # forked: the parent's connections are not ours
            with self._lock:
                if self._pid != os.getpid():
                    self._reset()
        slots = self._slots
        slots.acquire()
        try:
            with self._lock:
                item = self._idle.pop() if self._idle else None
            if item is None:
                connection = psycopg.connect(self._conninfo, autocommit=True)
                item = (connection, connection.cursor())
            connection = item[0]
            try:
                yield item[1]
            finally:
                if connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                    with self._lock:
                        self._idle.append(item)
                else:  # lost (the idle ones probably are too), or left mid-statement
                    lost = connection.broken
                    connection.close()
                    if lost:
                        self.close()
        finally:
            slots.release()

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.close()
