"""PostgreSQL's one-statement team spend (`creditflow_team_spend`, migration 0014) against the
general path in Python (`spend._spend` with the member, the only one on SQLite).

For random teams (an anchor on any day of a month, month ends and a leap year included; a
member with or without a monthly limit, active or suspended, with earlier spends in earlier or
the same monthly period) and a spend at a random later instant, both ways run on the same
state, each in a transaction rolled back afterwards: whenever the function spends, the general
path must do exactly the same (draws, balance, lots, entries, spend row, account, the member's
usage and period, the row naming the member); whenever it declines, it changed nothing.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from creditflow.credits import repository as repo
from creditflow.credits.book import run
from creditflow.credits.spend import _spend, _spend_in_database, spend_credits
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError
from creditflow.team import service as team

from .credit_kit import assert_ledger_clean, c, free_credits_today, give_lot, make_ctx, new_customer
from .test_pg_spend_function import _state


@pytest.fixture
def pg_ctx(pg_db):
    return make_ctx(pg_db)


def _team_state(cursor: repo.UnitCursor, customer_id: str) -> dict:
    state = _state(cursor, customer_id)
    raw = cursor.raw
    raw.execute("SELECT id, status, monthly_limit, used, used_period FROM team_members WHERE customer_id = %s "
                "ORDER BY id", (customer_id,))
    state["members"] = raw.fetchall()
    # The spend's id differs between the two ways (each makes its own); the rest is equal.
    raw.execute("SELECT reference, member_id, counted, period, created_at FROM team_spends WHERE customer_id = %s "
                "ORDER BY reference", (customer_id,))
    state["team_spends"] = raw.fetchall()
    return state


def _team(ctx, anchor: datetime) -> tuple[str, str]:
    """A team anchored at `anchor` with one active member besides its owner."""
    customer_id = new_customer(ctx)
    with ctx.db.transaction() as session:
        team.ensure_team(session, customer_id, anchor=anchor, now=anchor)
        member, _ = team.invite_member(ctx, session, customer_id, email="m@example.com", plan="creator",
                                       anchor=anchor, now=anchor)
        team.accept_invitation(ctx, session, member.id, external_id=f"{customer_id}-m", plan="creator", now=anchor)
    return customer_id, member.id


def _both_ways(ctx, customer_id: str, member: str, amount: Credits, reference: str):
    feature = ctx.catalog.feature("standard_models")
    connection = ctx.db.engine.raw_connection()
    try:
        cursor = repo.UnitCursor(ctx.db.engine.dialect, connection.cursor())
        before = _team_state(cursor, customer_id)
        connection.rollback()
        fast = _spend_in_database(ctx, cursor, customer_id, amount, feature, reference, member)
        after_fast = _team_state(cursor, customer_id)
        connection.rollback()
        try:
            general = _spend(ctx, cursor, customer_id, amount, feature, reference, member=member)
        except CreditflowError as exc:
            general = exc
        after_general = _team_state(cursor, customer_id)
        connection.rollback()
    finally:
        connection.close()
    return before, (fast, after_fast), (general, after_general)


small = st.integers(min_value=1, max_value=30_000).map(Credits)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    month=st.integers(min_value=1, max_value=12),
    day=st.sampled_from([1, 15, 28, 29, 30, 31]),
    seconds=st.integers(min_value=0, max_value=86_399),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=60_000)),
    earlier=st.lists(st.tuples(small, st.integers(min_value=0, max_value=24 * 70)), max_size=3),  # hours after anchor
    later=st.integers(min_value=0, max_value=60 * 24 * 80),  # minutes after the last earlier spend
    amount=small,
    pool=st.sampled_from(["500", "20"]),
    suspended=st.integers(min_value=0, max_value=9).map(lambda n: n == 0),
)
def test_the_team_function_spends_exactly_as_the_general_path_or_declines(
        pg_ctx, month, day, seconds, limit, earlier, later, amount, pool, suspended):
    ctx = pg_ctx
    anchor = datetime(2024, month, min(day, calendar.monthrange(2024, month)[1]), tzinfo=timezone.utc) \
        + timedelta(seconds=seconds)
    ctx.clock.set(anchor)
    customer_id, member = _team(ctx, anchor)
    give_lot(ctx, customer_id, "promo", c(pool), created=anchor, expires_at=None)
    with ctx.db.transaction() as session:
        team.update_member(ctx, session, member, monthly_limit=None if limit is None else str(Credits(limit)),
                           plan="creator", now=anchor)
    last = anchor
    for n, (size, hours) in enumerate(sorted(earlier, key=lambda e: e[1])):
        last = anchor + timedelta(hours=hours)
        ctx.clock.set(last)
        try:
            run(ctx, lambda cursor: _spend(ctx, cursor, customer_id, size, ctx.catalog.feature("standard_models"),
                                           f"earlier-{n}", member=member))
        except CreditflowError:
            pass
    if suspended:
        with ctx.db.transaction() as session:
            team.update_member(ctx, session, member, status="suspended", plan="creator", now=last)
    ctx.clock.set(last + timedelta(minutes=later))
    free_credits_today(ctx, customer_id)  # else the function leaves today's free lot to the general path

    before, (fast, after_fast), (general, after_general) = _both_ways(ctx, customer_id, member, amount, "job-1")

    if fast is None:
        event("declined")
        assert after_fast == before  # declined: nothing changed
        return
    event("spent")
    assert not isinstance(general, Exception), f"the function spent where the general path refused: {general}"
    assert [(d.lot_id, d.kind, d.amount) for d in fast.draws] == [(d.lot_id, d.kind, d.amount) for d in general.draws]
    assert (fast.balance, fast.created_at) == (general.balance, general.created_at)
    assert after_fast == after_general
    assert after_fast["members"] != before["members"]


def test_a_member_spend_is_one_statement_and_counts_against_the_limit(pg_ctx):
    ctx = pg_ctx
    anchor = datetime(2024, 1, 31, 12, tzinfo=timezone.utc)
    ctx.clock.set(anchor)
    customer_id, member = _team(ctx, anchor)
    give_lot(ctx, customer_id, "promo", c(100), created=anchor, expires_at=None)
    with ctx.db.transaction() as session:
        team.update_member(ctx, session, member, monthly_limit="10", plan="creator", now=anchor)
    ctx.clock.set(datetime(2024, 2, 29, 12, tzinfo=timezone.utc))  # the second period starts on 29 February
    free_credits_today(ctx, customer_id)
    assert _both_ways(ctx, customer_id, member, c(4), "job-1")[1][0] is not None  # the function takes it
    for n in range(2):
        spend_credits(ctx, customer_id, amount=c(4), feature="standard_models", reference=f"job-{n}", member=member)
    with pytest.raises(CreditflowError) as refused:  # 8 used of 10: the general path says why
        spend_credits(ctx, customer_id, amount=c(4), feature="standard_models", reference="job-3", member=member)
    assert refused.value.code == "member_limit_reached"
    with ctx.db.transaction(readonly=True) as session:
        used = team.get_member(session, member)
        assert (used.used, used.used_period) == (c(8), "2024-02-29T12:00:00.000000Z")
    assert_ledger_clean(ctx.db)
