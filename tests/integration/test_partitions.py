"""Monthly partitions of the history tables on PostgreSQL (migration 0015, kit/db/partitions.py):
the upgrade carries every row and sequence over, the worker makes months ahead once however many
workers try, and a month whose rows already sit in the DEFAULT partition takes them along."""

from __future__ import annotations

import re
import threading
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from creditflow.kit.db import Database
from creditflow.kit.db import partitions
from creditflow.migrations.runner import downgrade, upgrade

MONTHS = [datetime(2026, 3, 31, 23, 59, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc),
          datetime(2026, 9, 15, 12, tzinfo=timezone.utc)]
FAR_FUTURE = datetime(2031, 6, 15, tzinfo=timezone.utc)  # a test clock's time: no partition yet


def _rows(conn, table: str, key: str) -> list[tuple]:
    return [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]


def _customer(conn, customer_id: str, at: datetime, available: int = 0) -> None:
    """A customer on real time since `at`, with a credit account holding `available` (thousandths)."""
    conn.execute(text(
        "INSERT INTO customers (id, external_id, email, timezone, balance, currency, created_at) "
        "VALUES (:id, :id, :email, 'UTC', 0, 'usd', :at)"),
        {"id": customer_id, "email": f"{customer_id}@example.com", "at": at})
    conn.execute(text(
        "INSERT INTO credit_accounts (customer_id, granted, spent, expired, held, available) "
        "VALUES (:id, :available, 0, 0, 0, :available)"), {"id": customer_id, "available": available})


def _seed_0014(database: Database) -> None:
    with database.engine.begin() as conn:
        _customer(conn, "cus_p", MONTHS[0], available=4000)
        conn.execute(text(
            "INSERT INTO webhook_endpoints (id, url, secret, events, after_seq, created_at) "
            "VALUES ('we_p', 'https://example.com/h', 's', NULL, 0, :at)"), {"at": MONTHS[0]})
        for n, at in enumerate([*MONTHS, FAR_FUTURE], 1):
            conn.execute(text(
                "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
                "VALUES (:id, 'cus_p', 'lot_p', 'grant', 1000, NULL, :at)"), {"id": f"cre_{n}", "at": at})
            conn.execute(text(
                "INSERT INTO events (id, type, customer_id, data, created_at, dispatched, notified) "
                "VALUES (:id, 'credits.granted', 'cus_p', '{}', :at, true, true)"), {"id": f"evt_{n}", "at": at})
            conn.execute(text(
                "INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_id, customer_id, status, attempts, "
                "next_attempt_at, created_at) VALUES ('we_p', :n, :evt, 'cus_p', 'delivered', 1, :at, :at)"),
                {"n": n, "evt": f"evt_{n}", "at": at})


TABLES = (("credit_entries", "seq"), ("events", "seq"), ("webhook_deliveries", "id"))


def test_0015_carries_every_row_and_sequence_over(database_url):
    upgrade(database_url, "0014")
    database = Database(database_url)
    try:
        _seed_0014(database)
        with database.engine.connect() as conn:
            before = {table: _rows(conn, table, key) for table, key in TABLES}

        upgrade(database_url)

        with database.engine.begin() as conn:
            assert {table: _rows(conn, table, key) for table, key in TABLES} == before
            # Each sequence continues after the last number.
            seq = conn.execute(text(
                "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
                "VALUES ('cre_next', 'cus_p', 'lot_p', 'grant', 1, NULL, :at) RETURNING seq"),
                {"at": MONTHS[2]}).scalar()
            assert seq == 5
            evt = conn.execute(text(
                "INSERT INTO events (id, type, customer_id, data, created_at) "
                "VALUES ('evt_next', 't', 'cus_p', '{}', :at) RETURNING seq"), {"at": MONTHS[2]}).scalar()
            assert evt == 5
            delivery = conn.execute(text(
                "INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_id, customer_id, status, attempts, "
                "next_attempt_at, created_at) VALUES ('we_p', 5, 'evt_next', 'cus_p', 'pending', 0, :at, :at) "
                "RETURNING id"), {"at": MONTHS[2]}).scalar()
            assert delivery == 5
            if database.is_postgres:
                for table, _ in TABLES:
                    assert partitions.is_partitioned(conn, table)
                    assert {date(2026, 3, 1), date(2026, 4, 1), date(2026, 9, 1)} <= set(partitions.months(conn, table))
                    # The far-future row waits in the DEFAULT partition.
                    assert conn.execute(text(f"SELECT count(*) FROM {table}_default")).scalar() == 1
                    assert conn.execute(text(f"SELECT count(*) FROM {table}_p202603")).scalar() == 1
                types = dict(conn.execute(text(
                    "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                    "WHERE (table_name, column_name) IN (('credit_entries', 'seq'), ('events', 'seq'), "
                    "('webhook_deliveries', 'id'), ('webhook_deliveries', 'event_seq'), "
                    "('webhook_endpoints', 'after_seq'))")).all())
                assert set(types.values()) == {"bigint"} and len(types) == 5
                assert conn.execute(text(
                    "SELECT data_type FROM information_schema.sequences "
                    "WHERE sequence_name = 'credit_entries_seq_seq'")).scalar() == "bigint"

        # The ledger stays append-only, in every partition and through the parent.
        for sql in ("UPDATE credit_entries SET amount = 2 WHERE id = 'cre_1'",
                    "DELETE FROM credit_entries WHERE id = 'cre_4'",
                    *(("UPDATE credit_entries_p202603 SET amount = 2", "DELETE FROM credit_entries_default",
                       "TRUNCATE credit_entries") if database.is_postgres else ())):
            with pytest.raises((IntegrityError, DBAPIError), match="append-only"):
                with database.engine.begin() as conn:
                    conn.execute(text(sql))
        # Still one delivery per event and endpoint (within a month on PostgreSQL).
        with pytest.raises(IntegrityError):
            with database.engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_id, customer_id, status, attempts, "
                    "next_attempt_at, created_at) VALUES ('we_p', 5, 'evt_next', 'cus_p', 'pending', 0, :at, :at)"),
                    {"at": MONTHS[2]})

        with database.engine.connect() as conn:
            after = {table: _rows(conn, table, key) for table, key in TABLES}
        downgrade(database_url, "0014")
        with database.engine.connect() as conn:
            assert {table: _rows(conn, table, key) for table, key in TABLES} == after
            assert not partitions.is_partitioned(conn, "credit_entries")
        upgrade(database_url)
        with database.engine.connect() as conn:
            assert {table: _rows(conn, table, key) for table, key in TABLES} == after
    finally:
        database.dispose()


def test_a_new_month_takes_its_rows_from_the_default_partition(pg_db):
    """A test-clock customer far in the future wrote rows before their month existed: creating
    the month moves them into it, in the same transaction, and nothing else moves."""
    at = FAR_FUTURE
    with pg_db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO customers (id, external_id, email, timezone, balance, currency, created_at) "
            "VALUES ('cus_f', 'cus_f', 'f@example.com', 'UTC', 0, 'usd', :at)"), {"at": at})
        for n, when in enumerate((at, at, datetime(2033, 1, 1, tzinfo=timezone.utc)), 1):
            conn.execute(text(
                "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
                "VALUES (:id, 'cus_f', NULL, 'grant', :n, NULL, :at)"), {"id": f"cre_f{n}", "n": n, "at": when})
        before = _rows(conn, "credit_entries", "seq")
        assert conn.execute(text("SELECT count(*) FROM credit_entries_default")).scalar() == 3

    with pg_db.engine.begin() as conn:
        created = partitions.ensure_months(conn, [date(2031, 6, 1), date(2031, 7, 1)])
    assert set(created) == {f"{t}_p2031{m}" for t in partitions.PARTITIONED for m in ("06", "07")}

    with pg_db.engine.begin() as conn:
        assert _rows(conn, "credit_entries", "seq") == before
        assert conn.execute(text("SELECT count(*) FROM credit_entries_p203106")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM credit_entries_default")).scalar() == 1  # 2033 stays
        # The new DEFAULT partition and the new month refuse changes like every other.
        with pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("DELETE FROM credit_entries_p203106"))
    with pytest.raises(DBAPIError, match="append-only"):
        with pg_db.engine.begin() as conn:
            conn.execute(text("UPDATE credit_entries_default SET amount = 0"))
    with pg_db.engine.begin() as conn:  # again: nothing to do
        assert partitions.ensure_months(conn, [date(2031, 6, 1)]) == []


class _Ctx:
    def __init__(self, db):
        self.db = db


def test_workers_make_months_ahead_once_however_many_run(pg_db):
    now = datetime(2030, 11, 20, tzinfo=timezone.utc)
    results: list[int] = []
    errors: list[BaseException] = []
    databases = [Database(pg_db.url) for _ in range(4)]

    def worker(db):
        try:
            partitions._checked.clear()
            results.append(partitions.run(_Ctx(db), now, None))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(db,)) for db in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in databases:
        db.dispose()
    assert errors == []
    assert sorted(results) == [0, 0, 0, 9]  # 3 months x 3 tables, by one of them
    with pg_db.engine.connect() as conn:
        for table in partitions.PARTITIONED:
            assert {date(2030, 11, 1), date(2030, 12, 1), date(2031, 1, 1)} <= set(partitions.months(conn, table))
    # On a test clock's tick, or on SQLite, nothing to do.
    assert partitions.run(_Ctx(pg_db), datetime(2035, 1, 1, tzinfo=timezone.utc), "clk_1") == 0


def test_the_job_does_nothing_on_sqlite(sqlite_db):
    assert partitions.run(_Ctx(sqlite_db), datetime(2030, 1, 1, tzinfo=timezone.utc), None) == 0


def test_migrate_makes_this_month_and_the_next_two(pg_db):
    from typer.testing import CliRunner

    from creditflow.cli import app

    with pg_db.engine.begin() as conn:  # as if the months had never been made
        for table in partitions.PARTITIONED:
            for month in partitions.months(conn, table):
                if month >= partitions.month_of(datetime.now(timezone.utc)):
                    conn.execute(text(f"DROP TABLE {partitions.partition_name(table, month)}"))
    result = CliRunner().invoke(app, ["migrate", "--database-url", pg_db.url])
    assert result.exit_code == 0, result.output
    first = partitions.month_of(datetime.now(timezone.utc))
    with pg_db.engine.connect() as conn:
        for table in partitions.PARTITIONED:
            assert {partitions.add_months(first, n) for n in range(3)} <= set(partitions.months(conn, table))


def test_a_ledger_page_after_a_cursor_reads_the_months_from_the_cursor_on(db):
    """A customer on real time: the page after an entry starts at the cursor's month (less a
    day), and still has every later entry, one written a little before the cursor included."""
    from creditflow.credits.balance import list_entries

    if db.is_postgres:
        with db.engine.begin() as conn:
            partitions.ensure_months(conn, [date(2026, m, 1) for m in (1, 3, 4, 9)])
    times = [datetime(2026, 1, 5, tzinfo=timezone.utc), datetime(2026, 4, 1, 0, 30, tzinfo=timezone.utc),
             datetime(2026, 3, 31, 23, 50, tzinfo=timezone.utc), datetime(2026, 9, 2, tzinfo=timezone.utc)]
    with db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO customers (id, external_id, email, timezone, balance, currency, created_at) "
            "VALUES ('cus_pg', 'cus_pg', 'p@example.com', 'UTC', 0, 'usd', :at)"), {"at": times[0]})
        for n, at in enumerate(times):
            conn.execute(text(
                "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
                "VALUES (:id, 'cus_pg', NULL, 'grant', 1, NULL, :at)"), {"id": f"cre_pg{n}", "at": at})
    with db.transaction(readonly=True) as session:
        page = list_entries(session, "cus_pg", limit=10, starting_after="cre_pg1")
        assert [e.id for e in page.data] == ["cre_pg2", "cre_pg3"]
        assert [e.id for e in list_entries(session, "cus_pg", limit=10, starting_after="cre_pg0").data] == [
            "cre_pg1", "cre_pg2", "cre_pg3"]
    if db.is_postgres:
        with db.engine.connect() as conn:
            plan = "\n".join(conn.execute(text(
                "EXPLAIN SELECT * FROM credit_entries WHERE customer_id = 'cus_pg' AND seq > 2 "
                "AND created_at >= '2026-03-31 00:30:00+00' ORDER BY seq LIMIT 11")).scalars())
        assert "credit_entries_p202603" in plan and "credit_entries_p202604" in plan
        assert "credit_entries_p202601" not in plan


def test_a_cursor_is_looked_up_in_the_months_its_id_names(db):
    """A real-time customer's `starting_after`: the id's millisecond bounds the look-up to the
    month it was written in (PostgreSQL reads no other month's index of ids). An id whose time
    is not its row's (made elsewhere, or by hand) is still found, in every month."""
    from sqlalchemy import event

    from creditflow.credits.balance import list_entries
    from creditflow.kit.ids import derived_id

    if db.is_postgres:
        with db.engine.begin() as conn:
            partitions.ensure_months(conn, [date(2026, m, 1) for m in (1, 2, 3, 4)])
    times = [datetime(2026, m, 10, tzinfo=timezone.utc) for m in (1, 2, 3, 4)]
    ids = [derived_id("cre", at, "cus_cur", str(n)) for n, at in enumerate(times)]
    ids[1] = derived_id("cre", times[3], "cus_cur", "1")  # says April, written in February
    with db.engine.begin() as conn:
        _customer(conn, "cus_cur", times[0], available=4)
        for entry_id, at in zip(ids, times):
            conn.execute(text(
                "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
                "VALUES (:id, 'cus_cur', NULL, 'grant', 1, NULL, :at)"), {"id": entry_id, "at": at})

    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM credit_entries" in statement and "ORDER BY" not in statement:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.transaction(readonly=True) as session:
            assert [e.id for e in list_entries(session, "cus_cur", starting_after=ids[0]).data] == ids[1:]
            found_by_its_month = len(statements)
            assert [e.id for e in list_entries(session, "cus_cur", starting_after=ids[1]).data] == ids[2:]
            assert [e.id for e in list_entries(session, "cus_cur", starting_after=ids[2]).data] == ids[3:]
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert found_by_its_month == 1  # one look-up, in January
    assert len(statements) == 1 + 2 + 1  # the lying id's month held nothing: looked up everywhere
    if db.is_postgres:
        statement, parameters = statements[0]
        with db.engine.connect() as conn:
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN (ANALYZE) " + statement, parameters))
        assert "credit_entries_p202601" in plan, plan
        assert not re.search(r"credit_entries_p2026(0[2-9]|1)", plan), plan
