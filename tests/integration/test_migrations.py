"""The migrations build exactly the schema the models describe, on both backends, and the
SQLite engine runs with the settings money needs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, StatementError

from creditflow.customer.models import TestClock
from creditflow.kit.db import Database
from creditflow.kit.db.partitions import include_object, is_partition
from creditflow.migrations.runner import (
    MIGRATIONS_DIR,
    current,
    downgrade,
    head,
    upgrade,
)
from creditflow.models import Base


def _diff(database: Database) -> list:
    with database.engine.connect() as conn:
        # Leaves out the monthly partitions of PostgreSQL's history tables and what the models
        # declare for the other backend only (kit/db/partitions.py).
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "compare_server_default": True,
            "include_object": include_object(conn.dialect.name)})
        return compare_metadata(context, Base.metadata)


def _declared_partial_indexes(dialect: str) -> dict[str, str]:
    """Index name -> WHERE clause, for the partial indexes the models declare."""
    return {
        index.name: str(index.dialect_kwargs[f"{dialect}_where"])
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.dialect_kwargs.get(f"{dialect}_where") is not None
    }


def _partial_indexes_in(database: Database) -> dict[str, str]:
    """Index name -> its SQL definition, for the indexes in the database with a WHERE."""
    sql = (
        "SELECT name, sql, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        if database.is_sqlite
        else "SELECT indexname, indexdef, tablename FROM pg_indexes WHERE schemaname = 'public'"
    )
    with database.engine.connect() as conn:  # a partition's copies of its table's indexes aside
        return {name: ddl for name, ddl, table in conn.execute(text(sql))
                if " WHERE " in ddl.upper() and not is_partition(table)}


def test_upgrade_from_empty_matches_the_models(database_url):
    assert current(database_url) is None

    upgrade(database_url)

    assert current(database_url) == head()
    database = Database(database_url)
    try:
        assert _diff(database) == [], (
            "models changed without a migration: python -m creditflow.migrations.runner "
            "autogenerate \"what changed\""
        )
    finally:
        database.dispose()


def test_downgrade_to_base_and_up_again(database_url):
    upgrade(database_url)
    downgrade(database_url, "base")

    database = Database(database_url)
    try:
        assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
        assert current(database_url) is None
        upgrade(database_url)
        assert _diff(database) == []
    finally:
        database.dispose()


def test_migrated_fixture_is_at_head(db):
    assert current(db.url) == head()
    assert _diff(db) == []


# Autogenerate compares neither CHECK constraints nor the WHERE of partial indexes: check them.


def test_partial_indexes_match_the_models(db):
    dialect = db.engine.dialect.name
    declared = _declared_partial_indexes(dialect)
    actual = _partial_indexes_in(db)
    assert {"ix_credit_lots_open", "uq_subscriptions_live_customer"} <= set(declared)
    assert set(actual) == set(declared)
    if db.is_sqlite:  # PostgreSQL rewrites the expression (IN becomes = ANY (ARRAY[...]))
        for name, where in declared.items():
            assert actual[name].endswith(f"WHERE {where}"), (name, actual[name])


def test_check_constraints_match_the_models(db):
    inspector = inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        declared = {c.name for c in table.constraints if isinstance(c, CheckConstraint) and c.name}
        actual = {c["name"] for c in inspector.get_check_constraints(table.name) if c["name"]}
        assert actual == declared, table.name


def test_migrations_ship_inside_the_package():
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("0001_*.py")) == ["0001_initial.py"]


def test_migrate_cli_runs_from_any_directory(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run = subprocess.run(
        [sys.executable, "-m", "creditflow.migrations.runner", "upgrade", url],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert current(url) == head()


# --- SQLite settings -------------------------------------------------------------------------


def test_sqlite_connections_use_wal_and_synchronous_full(sqlite_db):
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1

    # WAL is a property of the file: a bare connection, without our pragmas, sees it too.
    bare = sqlite3.connect(make_url(sqlite_db.url).database)
    try:
        assert bare.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        bare.close()


def _impatient(database: Database) -> Database:
    """Wait only 50 ms for a lock instead of 30 s."""
    event.listen(database.engine, "connect", lambda conn, _: conn.execute("PRAGMA busy_timeout=50"))
    return database


def test_sqlite_write_transaction_takes_the_write_lock_at_begin(sqlite_db):
    other = _impatient(Database(sqlite_db.url))
    statements: list[str] = []
    event.listen(
        sqlite_db.engine, "before_cursor_execute",
        lambda conn, cursor, statement, *args: statements.append(statement),
    )
    try:
        with sqlite_db.transaction() as session:
            # A read only: under a DEFERRED begin this would take no write lock at all.
            session.execute(select(TestClock)).all()
            assert "BEGIN IMMEDIATE" in statements

            # So a second writer can't even begin, though nothing has been written yet...
            with pytest.raises(OperationalError, match="database is locked"):
                with other.transaction() as second:
                    second.execute(text("SELECT 1"))

            # ...while a read-only unit of work (DEFERRED) still reads, as WAL allows.
            with other.transaction(readonly=True) as reader:
                assert reader.execute(text("SELECT count(*) FROM test_clocks")).scalar() == 0

        # Once the first commits, the second writer goes through.
        with other.transaction() as second:
            second.execute(text("SELECT 1"))
    finally:
        other.dispose()


# --- Time columns ----------------------------------------------------------------------------


def test_naive_datetime_is_refused(db):
    with pytest.raises(StatementError, match="naive datetime"):
        with db.transaction() as session:
            session.add(TestClock(id="clk_naive", frozen_time=datetime(2026, 1, 31, 12),
                                  created_at=datetime(2026, 1, 31, 12, tzinfo=timezone.utc)))

    with db.transaction(readonly=True) as session:
        assert session.execute(select(TestClock)).all() == []


def test_aware_datetime_reads_back_as_the_same_utc_instant(db):
    paris = timezone(timedelta(hours=1))
    at = datetime(2026, 1, 31, 23, 30, 15, 123456, tzinfo=paris)
    with db.transaction() as session:
        session.add(TestClock(id="clk_aware", frozen_time=at, created_at=at))

    with db.transaction(readonly=True) as session:
        clock = session.get(TestClock, "clk_aware")
        assert clock.frozen_time == at
        assert clock.frozen_time.utcoffset() == timedelta(0)
        assert clock.frozen_time == datetime(2026, 1, 31, 22, 30, 15, 123456, tzinfo=timezone.utc)


def test_make_sqlite_db_gives_separate_migrated_databases(make_sqlite_db):
    first, second = make_sqlite_db(), make_sqlite_db()
    now = datetime(2026, 1, 31, tzinfo=timezone.utc)
    with first.transaction() as session:
        session.add(TestClock(id="clk_1", frozen_time=now, created_at=now))
    with second.transaction(readonly=True) as session:
        assert session.execute(select(TestClock)).all() == []
    assert current(second.url) == head()


def test_0002_keeps_the_active_plan_on_existing_credit_accounts(database_url):
    """A database made by 0001: the upgrade copies the plan of each active subscription onto the
    customer's credit account (past due and Free stay without one), and on PostgreSQL the spend
    function reads it from there."""
    upgrade(database_url, "0001")
    at = datetime(2026, 3, 10, tzinfo=timezone.utc)
    database = Database(database_url)
    with database.engine.begin() as conn:
        for n, status in enumerate(("active", "past_due", None)):
            cus = f"cus_m{n}"
            conn.execute(text(
                "INSERT INTO customers (id, external_id, email, timezone, balance, currency, created_at) "
                "VALUES (:id, :id, 'm@example.com', 'UTC', 0, 'usd', :at)"), {"id": cus, "at": at})
            conn.execute(text(
                "INSERT INTO credit_accounts (customer_id, granted, spent, expired, held, available) "
                "VALUES (:id, 0, 0, 0, 0, 0)"), {"id": cus})
            if status is not None:
                conn.execute(text(
                    "INSERT INTO subscriptions (id, customer_id, plan, term, term_price, status, anchor, "
                    "term_start_offset, term_end_offset, credit_offset, current_term_start, current_term_end, "
                    "credit_period_start, credit_period_end, cancel_at_period_end, retry_count, version, "
                    "created_at, updated_at) VALUES (:sub, :id, 'ultimate', 'monthly', 5000, :status, :at, 0, 1, "
                    "0, :at, :at, :at, :at, false, 0, 0, :at, :at)"),
                    {"sub": f"sub_m{n}", "id": cus, "status": status, "at": at})

    upgrade(database_url)

    with database.engine.connect() as conn:
        plans = dict(conn.execute(text("SELECT customer_id, plan FROM credit_accounts ORDER BY customer_id")).all())
        assert plans == {"cus_m0": "ultimate", "cus_m1": None, "cus_m2": None}
        if not database.is_sqlite:
            source = conn.scalar(text("SELECT prosrc FROM pg_proc WHERE proname = 'creditflow_spend'"))
            assert "v_plan := account.plan" in source and "FROM subscriptions" not in source
    downgrade(database_url, "0001")
    with database.engine.connect() as conn:
        assert "plan" not in {c["name"] for c in inspect(conn).get_columns("credit_accounts")}
        if not database.is_sqlite:
            source = conn.scalar(text("SELECT prosrc FROM pg_proc WHERE proname = 'creditflow_spend'"))
            assert "FROM subscriptions" in source
    database.dispose()
