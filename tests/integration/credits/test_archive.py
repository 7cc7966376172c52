"""`creditflow archive` on both backends: old months of events, webhook deliveries and ledger
entries go to export files holding exactly the rows removed; pending work stays; the ledger goes
only once the checkpoint covers it, and balances and the ledger check (incremental and full)
stay right without the archived rows; a re-run exports nothing twice."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from creditflow.archive import service as archive_service
from creditflow.cli import app
from creditflow.credits.check import run_ledger_check
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import spend_credits
from creditflow.kit.db import partitions

from .credit_kit import make_ctx, new_customer

MARCH, MAY = datetime(2026, 3, 10, 10, tzinfo=timezone.utc), datetime(2026, 5, 20, 10, tzinfo=timezone.utc)


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _all(db, table: str, key: str) -> dict[int, dict]:
    with db.engine.connect() as conn:
        return {row[key]: dict(row) for row in conn.execute(text(f"SELECT * FROM {table}")).mappings()}


def _state(db) -> dict:
    with db.engine.connect() as conn:
        return {
            "accounts": conn.execute(text("SELECT * FROM credit_accounts ORDER BY customer_id")).all(),
            "lots": conn.execute(text("SELECT id, granted, remaining FROM credit_lots ORDER BY id")).all(),
        }


def _read_export(path) -> tuple[list[dict], str]:
    raw = gzip.decompress(path.read_bytes())
    return [json.loads(line) for line in raw.splitlines()], hashlib.sha256(raw).hexdigest()


@pytest.fixture
def history(db):
    """Two customers with ledger entries and events in March and May 2026 and now; a delivered
    and a pending webhook delivery; one May event not yet sent to the endpoints."""
    ctx = make_ctx(db, at=MARCH)
    if db.is_postgres:  # as the worker made them when those months were current
        with db.engine.begin() as conn:
            partitions.ensure_months(conn, [date(2026, 3, 1), date(2026, 5, 1)])
    alice, bob = new_customer(ctx), new_customer(ctx)
    for customer in (alice, bob):
        grant_promo_credits(ctx, customer, amount="100", reason="test")
        spend_credits(ctx, customer, amount="3", feature="standard_models", reference="march")
    ctx.clock.set(MAY)
    spend_credits(ctx, alice, amount="2", feature="standard_models", reference="may")
    ctx.clock.set(datetime.now(timezone.utc))
    spend_credits(ctx, bob, amount="1", feature="standard_models", reference="now")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE events SET dispatched = true, notified = true"))
        conn.execute(text(
            "INSERT INTO webhook_endpoints (id, url, secret, events, after_seq, created_at) "
            "VALUES ('we_a', 'https://example.com/h', 's', NULL, 0, :at)"), {"at": MARCH})
        may_event = conn.execute(text("SELECT seq FROM events WHERE created_at >= :at ORDER BY seq LIMIT 1"),
                                 {"at": MAY}).scalar()
        conn.execute(text("UPDATE events SET dispatched = false WHERE seq = :s"), {"s": may_event})
        for status, at, seq in (("delivered", MARCH, 1), ("pending", MAY, may_event)):
            conn.execute(text(
                "INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_id, customer_id, status, attempts, "
                "next_attempt_at, created_at, completed_at) VALUES ('we_a', :seq, 'evt_x', :cus, :status, 1, :at, "
                ":at, :done)"), {"seq": seq, "cus": alice, "status": status, "at": at,
                                 "done": at if status == "delivered" else None})
    return ctx


def test_archive_exports_exactly_what_it_removes_and_the_ledger_still_proves_itself(history, tmp_path):
    db = history.db
    out = tmp_path / "archive"
    before = {t: _all(db, t, k) for t, k in archive_service.TABLES.items()}
    balances = _state(db)

    # The checkpoint doesn't cover the ledger yet: refused, nothing done.
    refused = _cli("archive", "--database-url", db.url, "--out", str(out), "--before", "2026-06")
    assert refused.exit_code == 1
    assert "creditflow ledger check" in refused.output and "not all covered" in refused.output
    assert not out.exists()
    assert {t: _all(db, t, k) for t, k in archive_service.TABLES.items()} == before

    assert run_ledger_check(db).report.problems == []

    dry = _cli("archive", "--database-url", db.url, "--out", str(out), "--before", "2026-06", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would archive credit_entries 2026-03" in dry.output
    assert not out.exists()
    assert {t: _all(db, t, k) for t, k in archive_service.TABLES.items()} == before

    done = _cli("archive", "--database-url", db.url, "--out", str(out), "--before", "2026-06")
    assert done.exit_code == 0, done.output
    assert "skip     events 2026-05" in done.output and "not yet sent" in done.output
    assert "skip     webhook_deliveries 2026-05" in done.output and "pending" in done.output

    after = {t: _all(db, t, k) for t, k in archive_service.TABLES.items()}
    exported = {"events": ["2026-03"], "webhook_deliveries": ["2026-03"], "credit_entries": ["2026-03", "2026-05"]}
    for table, key in archive_service.TABLES.items():
        removed = set(before[table]) - set(after[table])
        assert set(after[table]) <= set(before[table])
        rows: list[dict] = []
        for month in exported[table]:
            lines, sha = _read_export(out / f"{table}-{month}.jsonl.gz")
            manifest = json.loads((out / f"{table}-{month}.manifest.json").read_text())
            assert manifest["rows"] == len(lines) and manifest["sha256"] == sha
            assert all(line["created_at"].startswith(month) for line in lines)
            rows += lines
        assert sorted(r[key] for r in rows) == sorted(removed) and removed, table
        for row in rows:  # the same values as in the database
            assert row["id"] == before[table][row[key]]["id"]
    # Nothing pending, undispatched or recent went.
    with db.engine.connect() as conn:
        for table in ("events", "webhook_deliveries"):
            assert conn.execute(text(f"SELECT count(*) FROM {table} WHERE created_at < :at"),
                                {"at": datetime(2026, 4, 1, tzinfo=timezone.utc)}).scalar() == 0
    with db.engine.connect() as conn:  # only this month's ledger entries are left
        assert after["credit_entries"] and conn.execute(text(
            "SELECT count(*) FROM credit_entries WHERE created_at < :at"),
            {"at": datetime(2026, 6, 1, tzinfo=timezone.utc)}).scalar() == 0
    if db.is_postgres:
        with db.engine.connect() as conn:
            assert date(2026, 3, 1) not in partitions.months(conn, "credit_entries")
            assert date(2026, 5, 1) in partitions.months(conn, "events")

    assert _state(db) == balances
    assert run_ledger_check(db).report.problems == []            # incremental
    full = run_ledger_check(db, full=True)                        # from the archived sums
    assert full.report.problems == [] and full.saved
    assert run_ledger_check(db).report.problems == []            # from the rebuilt checkpoint
    # The full check still sees a balance edited by hand, archived entries or not.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE credit_accounts SET granted = granted + 1, available = available + 1 "
                          "WHERE customer_id = (SELECT min(customer_id) FROM credit_accounts)"))
    assert any("disagree" in p for p in run_ledger_check(db, full=True).report.problems)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE credit_accounts SET granted = granted - 1, available = available - 1 "
                          "WHERE customer_id = (SELECT min(customer_id) FROM credit_accounts)"))

    # Again: nothing exported twice, nothing lost.
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    again = _cli("archive", "--database-url", db.url, "--out", str(out), "--before", "2026-06")
    assert again.exit_code == 0, again.output
    assert "archived" not in again.output.replace("already archived", "")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    assert {t: _all(db, t, k) for t, k in archive_service.TABLES.items()} == after


def test_sqlite_finishes_a_month_whose_export_was_recorded(history, tmp_path, monkeypatch):
    """A crash after the export was recorded, with rows still to delete: the re-run deletes them
    from the record, without exporting the month again."""
    db = history.db
    if not db.is_sqlite:
        pytest.skip("PostgreSQL drops a month in the transaction that exports it")
    assert run_ledger_check(db).report.problems == []
    out = tmp_path / "archive"
    monkeypatch.setattr(archive_service, "BATCH", 1)
    deletes = []

    def crash_on_the_second_batch(conn, cursor, statement, *args):
        if statement.startswith("DELETE FROM credit_entries"):
            deletes.append(statement)
            if len(deletes) == 2:
                raise RuntimeError("the power went out")

    from sqlalchemy import event
    event.listen(db.engine, "before_cursor_execute", crash_on_the_second_batch)
    with pytest.raises(RuntimeError, match="power"):
        archive_service.archive(db, out, date(2026, 4, 1), tables=("credit_entries",), echo=lambda _: None)
    event.remove(db.engine, "before_cursor_execute", crash_on_the_second_batch)
    export = (out / "credit_entries-2026-03.jsonl.gz").read_bytes()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM archived_months")).scalar() == "exported"
    lines, _ = _read_export(out / "credit_entries-2026-03.jsonl.gz")

    plan = archive_service.archive(db, out, date(2026, 4, 1), tables=("credit_entries",), echo=lambda _: None)
    assert [m.action for m in plan] == ["finish"]
    assert (out / "credit_entries-2026-03.jsonl.gz").read_bytes() == export
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM archived_months")).scalar() == "done"
        left = conn.execute(text("SELECT count(*) FROM credit_entries WHERE created_at < '2026-04-01'")).scalar()
        archived = conn.execute(text("SELECT sum(entries) FROM ledger_archived_accounts")).scalar()
    assert left == 0 and archived == len(lines)
    assert run_ledger_check(db, full=True).report.problems == []


def test_bad_options_are_refused_naming_the_option(db, tmp_path):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    result = _cli("archive", "--database-url", db.url, "--out", str(tmp_path), "--before", "March")
    assert result.exit_code == 2 and "--before must be a month as YYYY-MM" in result.output
    result = _cli("archive", "--database-url", db.url, "--out", str(tmp_path), "--before", "2999-01")
    assert result.exit_code == 2 and "only past months" in result.output
    result = _cli("archive", "--database-url", db.url, "--out", str(tmp_path))
    assert result.exit_code == 2 and "--keep-months" in result.output
    assert not any(tmp_path.iterdir())
