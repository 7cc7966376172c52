"""What the database itself refuses, on both backends, and what the ledger check catches."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from creditflow.credits.check import check_ledger
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import spend_credits

from .credit_kit import assert_ledger_clean, new_customer


@pytest.fixture
def spent(ctx):
    cid = new_customer(ctx)
    grant_promo_credits(ctx, cid, amount="50", reason="x")
    spend_credits(ctx, cid, amount="120", feature="standard_models", reference="job-1")
    assert_ledger_clean(ctx.db)
    return cid


def _execute(db, sql: str, **params) -> None:
    with db.transaction() as session:
        session.execute(text(sql), params)


@pytest.mark.parametrize("sql", [
    "UPDATE credit_entries SET amount = amount + 1",
    "UPDATE credit_entries SET kind = 'grant' WHERE kind = 'spend'",
    "DELETE FROM credit_entries",
])
def test_ledger_entries_are_append_only(ctx, spent, sql):
    with pytest.raises(DBAPIError, match="append-only"):
        _execute(ctx.db, sql)
    assert_ledger_clean(ctx.db)


def test_truncate_is_refused_too_on_postgres(pg_db):
    with pytest.raises(DBAPIError, match="append-only"):
        _execute(pg_db, "TRUNCATE credit_entries")


@pytest.mark.parametrize("sql", [
    "UPDATE credit_lots SET remaining = -1",
    "UPDATE credit_lots SET remaining = granted + 1",
    "UPDATE credit_lots SET kind = 'gift'",
    "UPDATE credit_lots SET expired_at = created_at WHERE remaining > 0",
    "UPDATE credit_accounts SET available = -1",
    "UPDATE credit_accounts SET spent = spent - 1000000",
    "UPDATE credit_spends SET status = 'lost'",
    "UPDATE credit_spends SET amount = -1",
])
def test_check_constraints_refuse_impossible_balances(ctx, spent, sql):
    with pytest.raises(IntegrityError):
        _execute(ctx.db, sql)
    assert_ledger_clean(ctx.db)


def test_a_reference_is_unique_per_customer(ctx, spent):
    with pytest.raises(IntegrityError):
        _execute(ctx.db, "INSERT INTO credit_spends (id, customer_id, kind, reference, feature, amount, status, draws,"
                         " balance_after, created_at) SELECT 'spd_dup', customer_id, kind, reference, feature, amount,"
                         " status, draws, balance_after, created_at FROM credit_spends")


def _problems(db) -> list[str]:
    with db.transaction(readonly=True) as session:
        return check_ledger(session)


@pytest.mark.parametrize("tamper, expected", [
    ("UPDATE credit_accounts SET available = available + 1, granted = granted + 1",
     ["account totals disagree with the ledger entries", "the lots hold"]),
    ("UPDATE credit_accounts SET spent = spent + 1000, available = available - 1000",
     ["account totals disagree", "the lots hold", "the spends add up to"]),
    ("UPDATE credit_lots SET remaining = remaining - 1 WHERE kind = 'promo'",
     ["but the lots hold", "its entries say"]),
    ("UPDATE credit_spends SET amount = amount + 1", ["the spends add up to"]),
    ("UPDATE credit_accounts SET held = held + 5, available = available - 5",
     ["account totals disagree", "open holds reserve", "the lots hold"]),
])
def test_the_ledger_check_finds_what_was_tampered_with(ctx, spent, tamper, expected):
    _execute(ctx.db, tamper)
    problems = _problems(ctx.db)
    assert problems, "a tampered ledger must not check clean"
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert all(p.startswith(spent) for p in problems)


def test_the_ledger_check_finds_an_entry_nobody_accounted_for(ctx, spent):
    _execute(ctx.db, "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
                     "SELECT 'cre_forged', customer_id, NULL, 'grant', 5000, NULL, created_at FROM credit_spends")
    assert any("account totals disagree" in p and "granted" in p for p in _problems(ctx.db))


def test_the_fast_path_keeps_the_column_types_honest(ctx, spent):
    """The spend path's statements skip SQLAlchemy's execution machinery, not its types."""
    from datetime import datetime

    from creditflow.credits import repository as repo

    with ctx.db.engine.begin() as connection:
        cursor = repo.UnitCursor.of(connection)
        account = repo.lock_account(cursor, spent)
        assert account.totals["available"] == 30_000  # thousandths, read through CreditsColumn
        existing, plan, lots = repo.spend_plan_and_lots(cursor, spent, "job-1")
        assert existing.amount.milli == 120_000 and existing.created_at.tzinfo is not None
        assert plan is None and [lot.remaining.milli for lot in lots] == [30_000]
        with pytest.raises(ValueError, match="naive datetime"):
            repo.insert_entries(cursor, [dict(id="cre_naive", customer_id=spent, lot_id=None, kind="grant",
                                              amount=1, reference=None, created_at=datetime(2026, 3, 10))])


def test_events_written_by_the_fast_path_get_the_column_defaults(ctx):
    """A free-credit grant records its event with `dispatched` left to its default (False)."""
    from sqlalchemy import select

    from creditflow.events.models import Event

    cid = new_customer(ctx)
    spend_credits(ctx, cid, amount="1", feature="standard_models", reference="j")
    with ctx.db.transaction(readonly=True) as session:
        events = session.execute(select(Event.type, Event.dispatched, Event.data)
                                 .where(Event.customer_id == cid, Event.type == "credits.granted")).all()
    assert [(t, d, data["kind"], data["amount"]) for t, d, data in events] == [
        ("credits.granted", False, "free", "100")]


def test_the_credit_unit_of_work_retries_what_is_safe_to_retry():
    import sqlite3

    import psycopg
    from sqlalchemy.exc import OperationalError

    from creditflow.credits.book import _retryable

    assert _retryable(sqlite3.OperationalError("database is locked"))
    assert _retryable(OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")))
    assert _retryable(psycopg.errors.DeadlockDetected("deadlock detected"))
    assert _retryable(psycopg.errors.SerializationFailure("could not serialize"))
    assert not _retryable(psycopg.errors.UniqueViolation("duplicate key"))
    assert not _retryable(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not _retryable(ValueError("naive datetime"))
