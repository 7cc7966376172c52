"""PostgreSQL's one-statement spend (`creditflow_spend`, in the initial migration) against the general
path in Python (`spend._spend`, the only one on SQLite).

For random customers (lots of every kind with random sizes, ages and expiries, a plan or Free,
a time zone, today's free credits or not, holds, earlier references) and random spends, both
run on the same database state, each in a transaction that is then rolled back: whenever the
function spends, the general path must do exactly the same (the same draws, balance, lots,
ledger entries, spend row and account totals); whenever it declines (`slow`), it must have
changed nothing, and the service then takes the general path.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditflow.credits import repository as repo
from creditflow.credits.holds import hold_credits
from creditflow.credits.spend import _spend, _spend_in_database, spend_credits
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError

from .credit_kit import (START, assert_ledger_clean, c, free_credits_today, funded_customer, give_lot, make_ctx,
                         new_customer, subscribed)

ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati", "Pacific/Pago_Pago")


@pytest.fixture
def pg_ctx(pg_db):
    return make_ctx(pg_db)


def _state(cursor: repo.UnitCursor, customer_id: str) -> dict:
    raw = cursor.raw

    def rows(sql: str) -> list[tuple]:
        raw.execute(sql, (customer_id,))
        return raw.fetchall()

    return {
        "account": rows("SELECT granted, spent, expired, held, available, free_day FROM credit_accounts "
                        "WHERE customer_id = %s"),
        "lots": rows("SELECT id, kind, granted, remaining, expires_at, expired_at FROM credit_lots "
                     "WHERE customer_id = %s ORDER BY id"),
        "entries": rows("SELECT lot_id, kind, amount, reference, created_at FROM credit_entries "
                        "WHERE customer_id = %s ORDER BY seq"),
        "spends": [(kind, reference, feature, amount, status, draws, balance, created)
                   for kind, reference, feature, amount, status, draws, balance, created in rows(
                       "SELECT kind, reference, feature, amount, status, draws, balance_after, created_at "
                       "FROM credit_spends WHERE customer_id = %s ORDER BY created_at, reference")],
        # The spend's id differs between the two ways (each makes its own); the rest is equal.
        "events": rows("SELECT type, data::jsonb - 'spend', created_at FROM events "
                       "WHERE customer_id = %s ORDER BY seq"),
    }


def _both_ways(ctx, customer_id: str, amount: Credits, feature: str, reference: str):
    """(what the function did, the state after it), (what the general path did or the error it
    raised, the state after it): each in a transaction rolled back afterwards."""
    feature_def = ctx.catalog.feature(feature)
    connection = ctx.db.engine.raw_connection()
    try:
        cursor = repo.UnitCursor(ctx.db.engine.dialect, connection.cursor())
        before = _state(cursor, customer_id)
        connection.rollback()
        fast = _spend_in_database(ctx, cursor, customer_id, amount, feature_def, reference)
        after_fast = _state(cursor, customer_id)
        connection.rollback()
        try:
            general = _spend(ctx, cursor, customer_id, amount, feature_def, reference)
        except CreditflowError as exc:
            general = exc
        after_general = _state(cursor, customer_id)
        connection.rollback()
    finally:
        connection.close()
    return before, (fast, after_fast), (general, after_general)


amounts = st.integers(min_value=1, max_value=120_000).map(Credits)
lots = st.lists(st.tuples(
    st.sampled_from(["subscription", "top_up", "promo", "free"]),
    amounts,
    st.integers(min_value=1, max_value=72),  # created this many hours before START
    st.one_of(st.none(), st.integers(min_value=-48, max_value=24 * 40)),  # expires, hours from START
), max_size=7)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.sampled_from([None, "basic", "standard", "ultimate"]),
    zone=st.sampled_from(ZONES),
    given_lots=lots,
    free_today=st.booleans(),
    hold=st.one_of(st.none(), st.tuples(amounts, st.integers(min_value=60, max_value=7200))),
    later=st.integers(min_value=0, max_value=60 * 36),  # minutes after START when the spend comes
    amount=amounts,
    feature=st.sampled_from(["standard_models"] * 3 + ["pro_models", "private_generations", "video_models"]),
    reuse_reference=st.integers(min_value=0, max_value=9).map(lambda n: n == 0),
)
def test_the_function_spends_exactly_as_the_general_path_or_declines(
        pg_ctx, plan, zone, given_lots, free_today, hold, later, amount, feature, reuse_reference):
    ctx = pg_ctx
    ctx.clock.set(START)
    customer_id = new_customer(ctx, timezone=zone)
    if plan is not None:
        subscribed(ctx, customer_id, plan)
    for kind, size, created_hours, expires_hours in given_lots:
        created = START - timedelta(hours=created_hours)
        expires_at = None if expires_hours is None else START + timedelta(hours=expires_hours)
        if expires_at is not None and expires_at <= created:
            expires_at = created + timedelta(minutes=30)
        give_lot(ctx, customer_id, kind, size, created=created, expires_at=expires_at)
    if free_today:
        free_credits_today(ctx, customer_id)
    if hold is not None:
        try:
            hold_credits(ctx, customer_id, amount=hold[0], feature="standard_models", reference="the-hold",
                         ttl_seconds=hold[1])
        except CreditflowError:
            pass
    ctx.clock.set(START + timedelta(minutes=later))

    reference = "the-hold" if reuse_reference and hold is not None else "job-1"
    before, (fast, after_fast), (general, after_general) = _both_ways(ctx, customer_id, amount, feature, reference)

    if fast is None:
        assert after_fast == before  # declined: nothing changed
        return
    assert not isinstance(general, Exception), f"the function spent where the general path refused: {general}"
    assert not general.replayed
    assert [(d.lot_id, d.kind, d.amount) for d in fast.draws] == [(d.lot_id, d.kind, d.amount) for d in general.draws]
    assert (fast.balance, fast.created_at, fast.amount, fast.feature) == (
        general.balance, general.created_at, general.amount, general.feature)
    assert after_fast == after_general
    assert after_fast != before


@pytest.fixture
def customer(pg_ctx):
    return funded_customer(pg_ctx)


def _fast(ctx, customer_id, amount, feature="standard_models", reference="job-1"):
    return _both_ways(ctx, customer_id, c(amount), feature, reference)[1][0]


def test_the_usual_spend_is_done_by_the_function(pg_ctx, customer):
    assert _fast(pg_ctx, customer, "7.25") is not None
    result = spend_credits(pg_ctx, customer, amount=c("7.25"), feature="standard_models", reference="job-1")
    assert [d.amount for d in result.draws] == [c("7.25")] and result.draws[0].kind == "free"
    assert result.balance == c("592.75")
    assert_ledger_clean(pg_ctx.db)


@pytest.mark.parametrize("case", ["replay", "short", "free_day", "overdue_lot", "overdue_hold", "not_in_plan",
                                  "too_many_lots", "unknown_customer"])
def test_the_function_declines_what_needs_the_general_path(pg_ctx, customer, case):
    ctx, amount, feature, customer_id = pg_ctx, "1", "standard_models", customer
    if case == "replay":
        spend_credits(ctx, customer, amount=c(1), feature=feature, reference="job-1")
    elif case == "short":
        amount = "600.001"
    elif case == "free_day":
        ctx.clock.set(START + timedelta(hours=14))  # past midnight in Kolkata
    elif case == "overdue_lot":
        give_lot(ctx, customer, "promo", c(1), created=START - timedelta(hours=2), expires_at=START - timedelta(hours=1))
    elif case == "overdue_hold":
        hold_credits(ctx, customer, amount=c(1), feature=feature, reference="h", ttl_seconds=60)
        ctx.clock.set(START + timedelta(minutes=2))
    elif case == "not_in_plan":
        feature = "pro_models"
    elif case == "too_many_lots":
        for minutes in range(1, 11):  # ten small lots that expire before the free and promo ones
            give_lot(ctx, customer, "promo", c(1), created=START - timedelta(hours=1),
                  expires_at=START + timedelta(minutes=minutes))
        amount = "10.5"
    elif case == "unknown_customer":
        customer_id = "cus_nobody"
    assert _fast(ctx, customer_id, amount, feature) is None


def test_a_lost_connection_is_retried(pg_ctx, customer, pg_db):
    """No pre-ping: connections the server dropped fail their first statement, and both units
    of work (the one-statement spend and `Database.run`) retry on new ones."""
    spend_credits(pg_ctx, customer, amount=c(1), feature="standard_models", reference="before")
    pg_db.run(lambda session: session.connection().exec_driver_sql("SELECT 1"))
    with psycopg.connect(pg_db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as admin:
        terminated = admin.execute("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()) t").fetchone()[0]
    assert terminated >= 1
    result = spend_credits(pg_ctx, customer, amount=c(1), feature="standard_models", reference="after")
    assert not result.replayed and result.balance == c(598)
    assert pg_db.run(lambda session: session.connection().exec_driver_sql("SELECT 2").scalar()) == 2
    assert_ledger_clean(pg_db)


def test_a_spend_updates_its_lots_and_account_in_place(pg_ctx, customer):
    """HOT updates: a spend changes nothing that an index of credit_lots or credit_accounts
    holds, and both tables leave room on their pages, so no index entry is written for them."""
    connection = pg_ctx.db.engine.raw_connection()
    try:
        cursor = repo.UnitCursor(pg_ctx.db.engine.dialect, connection.cursor())
        feature = pg_ctx.catalog.feature("standard_models")
        for n in range(20):
            assert _spend_in_database(pg_ctx, cursor, customer, c(10), feature, f"job-{n}") is not None
        cursor.raw.execute("SELECT pg_stat_get_xact_tuples_updated(t::regclass), "
                           "pg_stat_get_xact_tuples_hot_updated(t::regclass) "
                           "FROM unnest(ARRAY['credit_lots', 'credit_accounts']) AS t")
        (lots_updated, lots_hot), (accounts_updated, accounts_hot) = cursor.raw.fetchall()
        connection.rollback()
    finally:
        connection.close()
    assert lots_updated >= 20 and accounts_updated >= 20
    assert lots_hot >= 0.9 * lots_updated and accounts_hot >= 0.9 * accounts_updated
