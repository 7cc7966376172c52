"""Who may spend on what, with which credits (free, subscription, top-up), and when free credits reset."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from creditflow.catalog.loader import load_catalog
from creditflow.credits.access import ALL_KINDS, PAID_KINDS, Standing, free_day, gets_free_credits, lot_kinds_for
from creditflow.kit.errors import Forbidden

CATALOG = load_catalog()
FREE, BASIC, STANDARD = Standing(None), Standing("basic"), Standing("standard")


@pytest.mark.parametrize("standing, feature, kinds", [
    (FREE, "standard_models", ALL_KINDS),          # top-up credits after the sub ended: yes
    (BASIC, "standard_models", ALL_KINDS),
    (BASIC, "pro_models", PAID_KINDS),             # free credits never pay for Pro
    (STANDARD, "private_generations", PAID_KINDS),
])
def test_allowed(standing, feature, kinds):
    assert lot_kinds_for(CATALOG, standing, CATALOG.feature(feature)) == kinds
    assert "free" not in PAID_KINDS


@pytest.mark.parametrize("standing, feature, code", [
    (FREE, "pro_models", "subscription_required"),          # and so top-ups can't pay for it
    (FREE, "video_models", "subscription_required"),
    (BASIC, "private_generations", "feature_not_in_plan"),
    (STANDARD, "video_models", "feature_not_in_plan"),
])
def test_refused(standing, feature, code):
    with pytest.raises(Forbidden) as error:
        lot_kinds_for(CATALOG, standing, CATALOG.feature(feature))
    assert (error.value.code, error.value.param) == (code, "feature")


def test_only_free_customers_get_free_credits_by_default():
    assert gets_free_credits(CATALOG, FREE)
    assert not gets_free_credits(CATALOG, BASIC)


@pytest.mark.parametrize("now, tz, day, ends_at", [
    ("2026-03-10T10:00:00Z", "UTC", "2026-03-10", "2026-03-11T00:00:00Z"),
    ("2026-03-10T23:59:59Z", "UTC", "2026-03-10", "2026-03-11T00:00:00Z"),
    ("2026-03-11T00:00:00Z", "UTC", "2026-03-11", "2026-03-12T00:00:00Z"),
    # Tokyo is UTC+9: 20:00 UTC is already tomorrow there.
    ("2026-03-10T20:00:00Z", "Asia/Tokyo", "2026-03-11", "2026-03-11T15:00:00Z"),
    ("2026-03-10T14:59:59Z", "Asia/Tokyo", "2026-03-10", "2026-03-10T15:00:00Z"),
    # New York springs forward on 8 March 2026: the day after is 23 hours long, midnight EDT.
    ("2026-03-08T12:00:00Z", "America/New_York", "2026-03-08", "2026-03-09T04:00:00Z"),
    ("2026-03-07T12:00:00Z", "America/New_York", "2026-03-07", "2026-03-08T05:00:00Z"),
    # Leap day.
    ("2028-02-29T12:00:00Z", "UTC", "2028-02-29", "2028-03-01T00:00:00Z"),
    # Santiago skips 00:00 when DST starts (6 Sep 2026): the day starts at 01:00 -03.
    ("2026-09-05T12:00:00Z", "America/Santiago", "2026-09-05", "2026-09-06T04:00:00Z"),
])
def test_free_day(now, tz, day, ends_at):
    result = free_day(datetime.fromisoformat(now.replace("Z", "+00:00")), tz)
    assert result.key == day
    assert result.ends_at == datetime.fromisoformat(ends_at.replace("Z", "+00:00"))
    assert result.ends_at.tzinfo == timezone.utc


def test_free_day_is_right_whatever_was_asked_before():
    """`free_day` remembers the last day per time zone; customers on test clocks ask about any
    instant, in any order."""
    instants = ["2026-03-10T23:59:59Z", "2026-03-11T00:00:00Z", "2026-03-09T12:00:00Z", "2026-03-11T00:00:00Z",
                "2026-03-10T00:00:00Z", "2026-03-09T23:59:59.999999Z"]
    for value in instants * 2:
        now = datetime.fromisoformat(value.replace("Z", "+00:00"))
        for tz in ("UTC", "Asia/Tokyo"):
            day = free_day(now, tz)
            assert day.starts_at <= now < day.ends_at
            assert day.key == now.astimezone(ZoneInfo(tz)).date().isoformat()
