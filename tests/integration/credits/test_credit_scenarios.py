"""The issue's scenarios, end to end through real subscriptions, top-ups and test clocks.

Balances are read back from the database after each step."""

from __future__ import annotations

from datetime import timedelta

import pytest

from creditflow.credits.balance import get_balance, list_entries
from creditflow.credits.holds import hold_credits, release_hold
from creditflow.credits.spend import spend_credits
from creditflow.purchase.top_up import purchase_top_up
from creditflow.kit.errors import Forbidden, InsufficientCredits
from creditflow.purchase.cancel import cancel_subscription
from creditflow.worker.testclock import advance_test_clock

from .credit_kit import (START, assert_ledger_clean, by_kind, c, make_ctx, new_customer, new_test_clock,
                        small_bundles_catalog, snapshot, subscribed, utc)


def spend(ctx, cid, amount, feature="standard_models", *, ref):
    return spend_credits(ctx, cid, amount=amount, feature=feature, reference=ref)


def kinds(ctx, cid):
    balance = by_kind(ctx, cid)
    return balance["free"], balance["subscription"], balance["top_up"]


@pytest.fixture
def small_ctx(db):
    return make_ctx(db, catalog=small_bundles_catalog())


@pytest.mark.parametrize("tz, day_one", [("UTC", utc(2026, 3, 10, 9)), ("Asia/Tokyo", utc(2026, 3, 10, 9))])
def test_free_credits_reset_at_local_midnight_and_never_accumulate(ctx, tz, day_one):
    clock = new_test_clock(ctx, day_one)
    cid = new_customer(ctx, test_clock=clock, timezone=tz)
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(100)  # day one, before any spend

    spend(ctx, cid, "40", ref="day-1")
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(60)

    # Tokyo's midnight is 15:00 UTC; UTC's is 00:00 the next day.
    midnight = utc(2026, 3, 10, 15) if tz == "Asia/Tokyo" else utc(2026, 3, 11)
    advance_test_clock(ctx, clock, midnight - timedelta(seconds=1))
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(60)
    advance_test_clock(ctx, clock, midnight + timedelta(hours=1))
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(100)  # not 160
    # The clock stopped at midnight, where the worker expired what was left of day one.
    entries = ctx.db.read(lambda session: list_entries(session, cid)).data
    assert [(e.kind, e.amount, e.created_at) for e in entries][-1] == ("expire", c(60), midnight)
    assert spend(ctx, cid, "100", ref="day-2").balance == c(0)
    with pytest.raises(InsufficientCredits):
        spend(ctx, cid, "0.001", ref="day-2b")
    assert_ledger_clean(ctx.db)


def test_free_30_subscription_20_top_up_1000_a_spend_of_80_leaves_0_0_970(ctx):
    cid = new_customer(ctx)
    spend(ctx, cid, "70", ref="free-70")  # on Free: free 30 left for today
    subscribed(ctx, cid, "basic")  # 2000 plan credits
    spend(ctx, cid, "1980", "pro_models", ref="pro-1980")  # Pro never touches free credits
    purchase_top_up(ctx, cid, bundle="credits_1000")
    assert kinds(ctx, cid) == (c(30), c(20), c(1000))

    result = spend(ctx, cid, "80", ref="job-80")

    assert [(d.kind, d.amount) for d in result.draws] == [("free", c(30)), ("subscription", c(20)), ("top_up", c(30))]
    assert kinds(ctx, cid) == (c(0), c(0), c(970))
    assert_ledger_clean(ctx.db)


def test_free_100_subscription_50_top_up_100_a_pro_spend_of_80_leaves_free_untouched(small_ctx):
    ctx = small_ctx
    cid = new_customer(ctx)
    release_hold(ctx, hold_credits(ctx, cid, amount="1", feature="standard_models", reference="warm-up").id)
    subscribed(ctx, cid, "basic")
    spend(ctx, cid, "1950", "pro_models", ref="pro-1950")
    purchase_top_up(ctx, cid, bundle="credits_100")
    assert kinds(ctx, cid) == (c(100), c(50), c(100))

    spend(ctx, cid, "80", "pro_models", ref="pro-80")

    assert kinds(ctx, cid) == (c(100), c(0), c(70))
    assert_ledger_clean(ctx.db)


def test_free_0_subscription_10_top_up_5_a_spend_of_25_is_refused_and_nothing_changes(small_ctx):
    ctx = small_ctx
    cid = new_customer(ctx)
    spend(ctx, cid, "100", ref="free-100")
    subscribed(ctx, cid, "basic")
    spend(ctx, cid, "1990", "pro_models", ref="pro-1990")
    purchase_top_up(ctx, cid, bundle="credits_5")
    assert kinds(ctx, cid) == (c(0), c(10), c(5))
    before = snapshot(ctx.db, cid)

    for feature in ("standard_models", "pro_models"):
        with pytest.raises(InsufficientCredits):
            spend(ctx, cid, "25", feature, ref=f"job-25-{feature}")

    assert snapshot(ctx.db, cid) == before
    assert kinds(ctx, cid) == (c(0), c(10), c(5))


def test_four_spends_of_73_5_from_1000_leave_exactly_706(ctx):
    cid = new_customer(ctx)
    subscribed(ctx, cid, "basic")
    spend(ctx, cid, "2000", "pro_models", ref="all-plan-credits")
    purchase_top_up(ctx, cid, bundle="credits_1000")
    for i in range(4):
        spend(ctx, cid, "73.5", "pro_models", ref=f"gen-{i}")
    assert kinds(ctx, cid) == (c(0), c(0), c(706))
    assert str(ctx.db.read(lambda session: get_balance(ctx, session, cid)).available) == "706"


def test_top_up_credits_survive_a_renewal_then_pay_only_for_what_free_allows(ctx):
    clock = new_test_clock(ctx, START)
    cid = new_customer(ctx, test_clock=clock)
    sub = subscribed(ctx, cid, "basic")
    purchase_top_up(ctx, cid, bundle="credits_1000")
    spend(ctx, cid, "500", "pro_models", ref="m1-pro")  # from the plan credits
    spend(ctx, cid, "1600", "pro_models", ref="m1-pro-2")  # 1500 plan + 100 top-up
    assert kinds(ctx, cid) == (c(0), c(0), c(900))

    advance_test_clock(ctx, clock, START + timedelta(days=31, hours=1))  # renewed on 10 April

    assert kinds(ctx, cid) == (c(0), c(2000), c(900))
    spend(ctx, cid, "2100", "pro_models", ref="m2-pro")
    assert kinds(ctx, cid) == (c(0), c(0), c(800))

    cancel_subscription(ctx, sub.id)
    advance_test_clock(ctx, clock, utc(2026, 5, 10, 12))  # the term ended on 10 May at 10:00

    balance = by_kind(ctx, cid)
    assert (balance["subscription"], balance["top_up"], balance["free"]) == (c(0), c(800), c(100))
    before = snapshot(ctx.db, cid)
    with pytest.raises(Forbidden) as error:
        spend(ctx, cid, "10", "pro_models", ref="after-pro")
    assert error.value.code == "subscription_required"
    assert snapshot(ctx.db, cid) == before
    # A standard job draws today's free credits first, then the top-up credits.
    result = spend(ctx, cid, "150", ref="after-standard")
    assert [(d.kind, d.amount) for d in result.draws] == [("free", c(100)), ("top_up", c(50))]
    assert kinds(ctx, cid) == (c(0), c(0), c(750))
    assert_ledger_clean(ctx.db)
