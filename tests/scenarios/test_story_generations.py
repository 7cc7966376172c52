"""Priced generations month by month, on SQLite and PostgreSQL: a quarterly Ultimate subscriber
and a yearly Creator whose unlimited windows open with every monthly billing period (credit month),
whose video jobs run one at a time with a daily fast quota, and who pay a creator by transfers. After
every step the ledger check (the CLI's) passes."""

from __future__ import annotations

from datetime import timedelta

from scenario_kit import credits, utc
from typer.testing import CliRunner

from creditflow.cli import app
from creditflow.credits.holds import settle_hold
from creditflow.credits.limits import LimitReached
from creditflow.credits.transfers import transfer_credits
from creditflow.generation.service import estimate_job, hold_job, spend_job
from creditflow.kit.credits import Credits
from creditflow.purchase.subscribe import subscribe

FOUR_2K_IMAGES = {"resolution": "2k", "count": 4}  # 10 x 1.5 x 4 = 60 credits
VIDEO_10S_1080P = {"seconds": 10, "resolution": "1080p"}  # 4 x 10 x 1.5 = 60 credits


def ledger_check_passes(db) -> None:
    result = CliRunner().invoke(app, ["ledger", "check", "--database-url", db.url])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "ledger check passed"


def test_a_quarterly_subscriber_gets_a_window_every_month_and_pays_after_it(world):
    start = utc(2026, 1, 31, 9)  # a month end: the next periods start on Feb 28 and Mar 31
    maya = world.shopper(start)
    subscribe(world.ctx, maya.id, "ultimate", "quarterly")
    ctx = world.ctx

    def image(reference: str) -> Credits:
        return spend_job(ctx, maya.id, feature="image_fast", options=FOUR_2K_IMAGES, reference=reference).amount

    # January 31: the window runs 7 days, to Feb 7 09:00.
    assert estimate_job(ctx, maya.id, feature="image_fast", options=FOUR_2K_IMAGES).amount == Credits(0)
    assert image("jan-1") == Credits(0)
    maya.advance(utc(2026, 2, 7, 8, 59, 59))
    assert image("feb-1") == Credits(0)
    maya.advance(utc(2026, 2, 7, 9))
    assert image("feb-2") == credits(60)
    assert maya.account().available == credits(16000 - 60)
    ledger_check_passes(world.db)

    # February 28 (the month's end, clamped): the second credit month of the quarter opens a new
    # window, though the quarter itself was paid once.
    maya.advance(utc(2026, 2, 28, 9))
    assert maya.charged() == [12750]
    assert maya.account().available == credits(16000)  # the month's plan credits, no rollover
    assert image("mar-1") == Credits(0)
    maya.advance(utc(2026, 3, 7, 9))
    assert image("mar-2") == credits(60)
    ledger_check_passes(world.db)

    # March 31: the third month; then the quarter renews on April 30.
    maya.advance(utc(2026, 3, 31, 9))
    assert image("mar-3") == Credits(0)
    maya.advance(utc(2026, 4, 30, 9))
    assert maya.charged() == [12750, 12750]
    assert image("apr-1") == Credits(0)
    zero_spends = [e for e in maya.entries(plan_only=False) if e.kind == "spend" and e.amount == Credits(0)]
    assert [e.reference for e in zero_spends] == ["jan-1", "feb-1", "mar-1", "mar-3", "apr-1"]
    ledger_check_passes(world.db)


def test_video_jobs_run_one_at_a_time_with_a_daily_fast_quota_month_after_month(world):
    start = utc(2026, 3, 10, 10)
    sam = world.shopper(start)
    subscribe(world.ctx, sam.id, "ultimate", "monthly")
    ctx = world.ctx

    # One video job at a time: the second waits until the first settles.
    first = hold_job(ctx, sam.id, feature="video", options=VIDEO_10S_1080P, reference="v-1", ttl_seconds=900)
    assert first.amount == credits(60)
    try:
        hold_job(ctx, sam.id, feature="video", options={}, reference="v-2")
        raise AssertionError("a second video job ran beside the first")
    except LimitReached as refused:
        assert (refused.code, refused.resets_at) == ("concurrency_limit", start + timedelta(minutes=15))
    settle_hold(ctx, first.id, amount="60")
    ledger_check_passes(world.db)

    # 20 fast videos a day; the 21st of the day runs relaxed; the next day is fast again.
    queues = [spend_job(ctx, sam.id, feature="video", options={}, reference=f"d1-{i}").queue for i in range(20)]
    assert queues == ["fast"] * 19 + ["relaxed"]  # the settled hold was the day's first fast job
    assert sam.account().available == credits(16000 - 60 - 20 * 20)
    sam.advance(utc(2026, 3, 11, 0))  # midnight UTC, the customer's time zone
    assert spend_job(ctx, sam.id, feature="video", options={}, reference="d2-0").queue == "fast"

    # A month later the plan renews; the limits are the same, the credits refreshed.
    sam.advance(utc(2026, 4, 10, 10))
    assert sam.charged() == [5000, 5000]
    assert sam.account().available == credits(16000)
    job = hold_job(ctx, sam.id, feature="video", options={"seconds": 5}, reference="apr-1", ttl_seconds=60)
    sam.advance(utc(2026, 4, 10, 10, 1))  # the hold expires unsettled: its slot frees, its credits return
    assert hold_job(ctx, sam.id, feature="video", options={}, reference="apr-2").amount == credits(20)
    assert job.amount == credits(20)
    assert sam.account().held == credits(20)
    ledger_check_passes(world.db)


def test_a_creator_is_paid_by_transfers_and_spends_them_on_free(world):
    start = utc(2026, 5, 1, 12)
    buyer = world.shopper(start)
    subscribe(world.ctx, buyer.id, "standard", "monthly")
    creator = world.shopper(start, token=None)
    ctx = world.ctx
    for month in range(3):  # a download a month
        at = utc(2026, 5 + month, 2, 12)
        buyer.advance(at)
        creator.advance(at)
        transfer_credits(ctx, sender=buyer.id, receiver=creator.id, amount="150.25", feature="standard_models",
                         reference=f"download-{month}")
        ledger_check_passes(world.db)
    earned = creator.lots(kind="earned")
    assert [(lot.granted, lot.expires_at) for lot in earned] == [(Credits(150_250), None)] * 3
    assert buyer.account().spent == Credits(3 * 150_250)
    # On Free, the creator spends today's free credits first (they expire tonight), then earned ones.
    spent = spend_job(ctx, creator.id, feature="standard_models", amount="250", reference="use")
    assert [(draw.kind, draw.amount) for draw in spent.draws] == [
        ("free", credits(100)), ("earned", Credits(150_000))]
    assert creator.account().available == Credits(3 * 150_250 + 100_000 - 250_000)
    ledger_check_passes(world.db)
