"""A long-lived PostgreSQL connection keeps a bounded number of prepared statements, whatever
statements it has run: psycopg prepares a statement run 5 times and keeps at most 100 per
connection (dropping the least recently used), on the engine's connections and on the
autocommit connections of single-statement units of work (kit/db/statements.py) alike."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from creditflow.kit.db import Database
from tests.conftest import _pg_fresh

pytestmark = pytest.mark.postgres

DISTINCT_STATEMENTS = 300
# psycopg's 100, and the one it dropped last, deallocated along with the connection's next statement.
KEPT_AT_MOST = 101


def _prepared(cursor) -> int:
    cursor.execute("SELECT count(*) FROM pg_prepared_statements")
    return cursor.fetchone()[0]


def test_the_engines_connection_keeps_at_most_100_prepared_statements(_pg_admin):
    with _pg_fresh(_pg_admin) as url:
        db = Database(url)
        try:
            with db.engine.connect() as conn:
                for n in range(DISTINCT_STATEMENTS):
                    for _ in range(6):  # past psycopg's threshold: this one gets prepared
                        conn.execute(text(f"SELECT CAST(:x AS integer) + {n}"), {"x": 1})
                cursor = conn.connection.driver_connection.cursor()
                kept = _prepared(cursor)
        finally:
            db.dispose()

    assert 0 < kept <= KEPT_AT_MOST


def test_a_statement_connection_keeps_at_most_100_prepared_statements(_pg_admin):
    with _pg_fresh(_pg_admin) as url:
        db = Database(url)
        try:
            with db.statements.cursor() as cursor:
                for n in range(DISTINCT_STATEMENTS):
                    for _ in range(6):
                        cursor.execute(f"SELECT %s::integer + {n}", (1,))
                kept = _prepared(cursor)
        finally:
            db.statements.close()
            db.dispose()

    assert 0 < kept <= KEPT_AT_MOST
