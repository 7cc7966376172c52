"""The expiry job: holds and lots past their time, on real time and on test clocks."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from creditflow.credits.balance import get_balance, list_entries
from creditflow.credits.holds import get_hold, hold_credits
from creditflow.credits.jobs import expire_due, next_due
from creditflow.credits.models import CreditLot
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import spend_credits
from creditflow.worker.runner import tick
from creditflow.worker.testclock import advance_test_clock

from .credit_kit import START, assert_ledger_clean, c, new_customer, new_test_clock, snapshot


def test_free_customers_who_do_nothing_cost_nothing(ctx):
    idle = [new_customer(ctx) for _ in range(20)]
    ctx.clock.set(START + timedelta(days=3))
    assert expire_due(ctx, ctx.clock.now()) == 0
    with ctx.db.transaction(readonly=True) as session:
        assert session.scalars(select(CreditLot)).all() == []
    assert all(ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(100) for cid in idle)


def test_the_worker_expires_lots_and_holds_at_their_time_on_real_time_only(ctx):
    real = new_customer(ctx)
    clock = new_test_clock(ctx, START)
    simulated = new_customer(ctx, test_clock=clock)
    for cid in (real, simulated):
        grant_promo_credits(ctx, cid, amount="10", reason="x", expires_at=START + timedelta(hours=1))
        hold_credits(ctx, cid, amount="5", feature="standard_models", reference="h", ttl_seconds=1800)
    with ctx.db.transaction(readonly=True) as session:
        assert next_due(session, None, START) == START + timedelta(minutes=30)
        assert next_due(session, clock, START) == START + timedelta(minutes=30)
        assert next_due(session, None, START + timedelta(minutes=30)) == START + timedelta(hours=1)
    simulated_before = snapshot(ctx.db, simulated)

    ctx.clock.set(START + timedelta(hours=2))
    tick(ctx)

    promo_expiry = [e for e in ctx.db.read(lambda session: list_entries(session, real)).data if e.kind == "expire"]
    assert [(e.amount, e.created_at) for e in promo_expiry] == [(c(10), START + timedelta(hours=1))]
    with ctx.db.transaction(readonly=True) as session:
        assert next_due(session, None, START + timedelta(hours=2)) == START.replace(hour=0) + timedelta(days=1)
    assert snapshot(ctx.db, simulated) == simulated_before  # the test clock hasn't moved
    assert_ledger_clean(ctx.db)


def test_advancing_a_test_clock_stops_at_each_expiry(ctx):
    clock = new_test_clock(ctx, START)
    cid = new_customer(ctx, test_clock=clock)
    grant_promo_credits(ctx, cid, amount="10", reason="x", expires_at=START + timedelta(hours=3))
    hold = hold_credits(ctx, cid, amount="105", feature="standard_models", reference="h", ttl_seconds=3600)

    advance_test_clock(ctx, clock, START + timedelta(days=2))

    assert ctx.db.read(lambda session: get_hold(ctx, session, hold.id)).status == "expired"
    expiries = [(e.amount, e.created_at) for e in ctx.db.read(lambda session: list_entries(session, cid, limit=100)).data if e.kind == "expire"]
    # The hold came back at 11:00 (to the free lot and the promo), the promo expired at 13:00,
    # the free lot at midnight.
    assert expiries == [(c(10), START + timedelta(hours=3)), (c(100), START.replace(hour=0) + timedelta(days=1))]
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(100)
    assert_ledger_clean(ctx.db)


def test_a_spend_after_the_expiry_but_before_the_worker_sees_the_same_ledger(ctx):
    cid = new_customer(ctx)
    grant_promo_credits(ctx, cid, amount="10", reason="x", expires_at=START + timedelta(hours=1))
    ctx.clock.set(START + timedelta(hours=2))
    spend_credits(ctx, cid, amount="1", feature="standard_models", reference="j")
    expiry = [(e.amount, e.created_at) for e in ctx.db.read(lambda session: list_entries(session, cid)).data if e.kind == "expire"]
    assert expiry == [(c(10), START + timedelta(hours=1))]
    assert expire_due(ctx, ctx.clock.now()) == 0
    assert_ledger_clean(ctx.db)
