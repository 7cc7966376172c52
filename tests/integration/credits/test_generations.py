"""Priced generations on SQLite and PostgreSQL: a spend by options is charged exactly its
estimate, transfers conserve credits (the ledger check stays green), daily limits reset at the
customer's local midnight across a daylight-saving change, and racing holds respect a
concurrency limit of 1."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from creditflow.catalog.loader import default_catalog_path, load_catalog_text
from creditflow.catalog.pricing import estimate
from creditflow.credits.balance import get_balance
from creditflow.credits.limits import LimitReached
from creditflow.credits.models import CreditEntry, CreditSpend
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.transfers import transfer_credits
from creditflow.generation.service import hold_job, spend_job
from creditflow.kit.credits import Credits
from creditflow.kit.errors import InsufficientCredits

from .credit_kit import assert_ledger_clean, c, make_ctx, new_customer, subscribed

SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _catalog(daily: int = 2):
    text = default_catalog_path().read_text(encoding="utf-8")
    old = "image_fast: {concurrent: 2, fast_per_day: 100, relaxed: true}"
    assert text.count(old) == 1
    return load_catalog_text(text.replace(old, f"image_fast: {{concurrent: 1, fast_per_day: {daily}}}"), "test")


image_options = st.fixed_dictionaries({}, optional={
    "resolution": st.sampled_from(["1k", "2k", "4k"]), "count": st.integers(1, 8), "enhancer": st.booleans()})
video_options = st.fixed_dictionaries({}, optional={
    "seconds": st.integers(5, 60), "resolution": st.sampled_from(["720p", "1080p", "4k"]), "enhancer": st.booleans()})


@SLOW
@given(jobs=st.lists(st.one_of(st.tuples(st.just("image_fast"), image_options),
                               st.tuples(st.just("standard_models"), st.just(None))), min_size=1, max_size=4))
def test_a_spend_by_options_is_charged_its_estimate_to_the_thousandth(db, jobs):
    ctx = make_ctx(db, catalog=_catalog(daily=100))
    customer = new_customer(ctx)
    subscribed(ctx, customer, "standard")
    before = ctx.db.read(lambda session: get_balance(ctx, session, customer)).available
    charged = 0
    for index, (feature, options) in enumerate(jobs):
        if options is None:  # a spend by amount, beside them
            spent = spend_job(ctx, customer, feature=feature, amount="1.234", reference=f"job-{index}")
            assert spent.amount == c("1.234")
        else:
            expected = estimate(feature, ctx.catalog.feature(feature).cost, options).amount
            spent = spend_job(ctx, customer, feature=feature, options=options, reference=f"job-{index}")
            assert spent.amount == expected
            assert sum(draw.amount.milli for draw in spent.draws) == expected.milli
        charged += spent.amount.milli
        with db.transaction(readonly=True) as session:
            row = session.scalar(select(CreditSpend).where(CreditSpend.reference == f"job-{index}",
                                                           CreditSpend.customer_id == customer))
            assert row.amount == spent.amount
    after = ctx.db.read(lambda session: get_balance(ctx, session, customer)).available
    assert before.milli - after.milli == charged
    assert_ledger_clean(db)


@SLOW
@given(moves=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(1, 150_000)), min_size=1,
                      max_size=8))
def test_transfers_conserve_credits_and_keep_the_ledger_sound(db, moves):
    ctx = make_ctx(db)
    people = [new_customer(ctx) for _ in range(3)]
    for person in people[:2]:
        grant_promo_credits(ctx, person, amount="250", reason="seed", expires_at=None)

    def total():
        return sum(ctx.db.read(lambda session: get_balance(ctx, session, p)).available.milli for p in people)

    start = total()  # promo credits and today's free credits
    run = uuid.uuid4().hex[:8]  # references are global, and the database outlives an example
    for index, (sender, receiver, milli) in enumerate(moves):
        if sender == receiver:
            continue
        amount = Credits(milli)
        try:
            done = transfer_credits(ctx, sender=people[sender], receiver=people[receiver], amount=str(amount),
                                    feature="standard_models", reference=f"move-{run}-{index}")
        except InsufficientCredits:
            continue
        assert done.amount == amount
        again = transfer_credits(ctx, sender=people[sender], receiver=people[receiver], amount=str(amount),
                                 feature="standard_models", reference=f"move-{run}-{index}")
        assert again.replayed and again.id == done.id
        assert total() == start
    assert total() == start
    assert_ledger_clean(db)


def test_daily_limit_resets_at_local_midnight_across_a_daylight_saving_change(db):
    # Paris moves its clocks forward on 2026-03-29: that day runs from 2026-03-28T23:00Z to
    # 2026-03-29T22:00Z (23 hours).
    ctx = make_ctx(db, catalog=_catalog(daily=2), at=datetime(2026, 3, 28, 12, tzinfo=timezone.utc))
    customer = new_customer(ctx, timezone="Europe/Paris")
    subscribed(ctx, customer, "standard")

    def spend(reference):
        return spend_job(ctx, customer, feature="image_fast", options={}, reference=reference)

    ctx.clock.set(datetime(2026, 3, 28, 22, 59, 59, tzinfo=timezone.utc))  # 23:59:59 on the 28th in Paris
    spend("a1"), spend("a2")
    try:
        spend("a3")
        raise AssertionError("the third fast job of the day went through")
    except LimitReached as refused:
        assert (refused.code, refused.resets_at) == ("daily_limit", datetime(2026, 3, 28, 23, tzinfo=timezone.utc))
    ctx.clock.set(datetime(2026, 3, 28, 23, tzinfo=timezone.utc))  # midnight in Paris
    spend("b1"), spend("b2")
    ctx.clock.set(datetime(2026, 3, 29, 21, 59, 59, tzinfo=timezone.utc))  # 23:59:59 (summer time)
    try:
        spend("b3")
        raise AssertionError("the third fast job of the day went through")
    except LimitReached as refused:
        assert refused.resets_at == datetime(2026, 3, 29, 22, tzinfo=timezone.utc)
    ctx.clock.set(datetime(2026, 3, 29, 22, tzinfo=timezone.utc))
    assert spend("c1").queue == "fast"
    assert_ledger_clean(db)


def test_racing_holds_leave_exactly_one_job_running_and_settles_free_the_slot(db):
    ctx = make_ctx(db, catalog=_catalog(daily=100))
    customer = new_customer(ctx)
    subscribed(ctx, customer, "standard")
    barrier = threading.Barrier(16)
    outcomes: list = []

    def place(index):
        barrier.wait()
        try:
            outcomes.append(hold_job(ctx, customer, feature="image_fast", options={"count": 2},
                                     reference=f"race-{index}").id)
        except LimitReached as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=place, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcome == "concurrency_limit" for outcome in outcomes) == [False] + [True] * 15
    balance = ctx.db.read(lambda session: get_balance(ctx, session, customer))
    assert balance.held == c(20)
    assert_ledger_clean(db)


def test_inside_a_window_spends_are_recorded_with_amount_0(db):
    ctx = make_ctx(db)
    customer = new_customer(ctx)
    subscribed(ctx, customer, "ultimate")
    spent = spend_job(ctx, customer, feature="image_fast", options={"count": 8, "resolution": "4k"},
                      reference="free")
    assert spent.amount == Credits(0) and spent.draws == ()
    with db.transaction(readonly=True) as session:
        entries = session.execute(select(CreditEntry.kind, CreditEntry.amount, CreditEntry.lot_id).where(
            CreditEntry.customer_id == customer, CreditEntry.reference == "free")).all()
    assert entries == [("spend", Credits(0), None)]
    ctx.clock.set(ctx.clock.now() + timedelta(days=7))
    assert spend_job(ctx, customer, feature="image_fast", options={}, reference="paid").amount == c(10)
    assert_ledger_clean(db)


def test_a_hold_of_0_inside_a_window_expires_by_the_worker(db):
    from creditflow.credits.holds import get_hold
    from creditflow.credits.jobs import expire_due

    ctx = make_ctx(db)
    customer = new_customer(ctx)
    subscribed(ctx, customer, "ultimate")
    hold = hold_job(ctx, customer, feature="image_fast", options={"count": 2}, reference="free-hold", ttl_seconds=60)
    assert hold.amount == Credits(0)
    later = ctx.clock.now() + timedelta(minutes=2)
    assert expire_due(ctx, later) == 1
    assert expire_due(ctx, later) == 0  # done once: nothing is found again
    with db.transaction(readonly=True) as session:
        assert session.scalar(select(CreditSpend.status).where(CreditSpend.id == hold.id)) == "expired"
        assert get_hold(ctx, session, hold.id).status == "expired"
    assert_ledger_clean(db)


DST_DAYS = [datetime(2026, 3, 29, tzinfo=timezone.utc), datetime(2026, 10, 25, tzinfo=timezone.utc),
            datetime(2026, 3, 8, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc)]


@SLOW
@given(zone=st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Sydney"]),
       day=st.sampled_from(DST_DAYS), offset=st.integers(-36 * 3600, 36 * 3600))
def test_a_daily_limit_frees_up_exactly_at_the_next_local_midnight(db, zone, day, offset):
    from zoneinfo import ZoneInfo

    at = day + timedelta(seconds=offset)
    ctx = make_ctx(db, catalog=_catalog(daily=1), at=at)
    customer = new_customer(ctx, timezone=zone)
    subscribed(ctx, customer, "standard")
    assert spend_job(ctx, customer, feature="image_fast", options={}, reference="first").queue == "fast"
    try:
        spend_job(ctx, customer, feature="image_fast", options={}, reference="second")
        raise AssertionError("a second fast job on the same local day")
    except LimitReached as refused:
        resets_at = refused.resets_at
    local = resets_at.astimezone(ZoneInfo(zone))
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert local.date() == at.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
    ctx.clock.set(resets_at - timedelta(seconds=1))
    try:
        spend_job(ctx, customer, feature="image_fast", options={}, reference="third")
        raise AssertionError("the limit freed up before local midnight")
    except LimitReached:
        pass
    ctx.clock.set(resets_at)
    assert spend_job(ctx, customer, feature="image_fast", options={}, reference="fourth").queue == "fast"
