"""Unlimited windows open with each billing (credit) period and close exactly `days` later, to the
second, cut short by the period's end; month ends and leap years included. And the day a daily
limit counts in starts at local midnight, across daylight-saving changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.credits.access import free_day
from creditflow.generation.windows import open_window, window_of
from creditflow.kit.periods import credit_period

UTC = timezone.utc


@pytest.mark.parametrize("anchor, k, days, start, end", [
    # a subscription anchored on Jan 31: its periods start on Feb 28 (29 in a leap year), Mar 31
    (datetime(2026, 1, 31, 12, tzinfo=UTC), 1, 7, datetime(2026, 2, 28, 12, tzinfo=UTC),
     datetime(2026, 3, 7, 12, tzinfo=UTC)),
    (datetime(2028, 1, 31, 12, tzinfo=UTC), 1, 7, datetime(2028, 2, 29, 12, tzinfo=UTC),
     datetime(2028, 3, 7, 12, tzinfo=UTC)),
    (datetime(2028, 1, 31, 12, tzinfo=UTC), 2, 3, datetime(2028, 3, 31, 12, tzinfo=UTC),
     datetime(2028, 4, 3, 12, tzinfo=UTC)),
    # a window longer than its period ends with it (Feb 28 to Mar 31, 2027)
    (datetime(2027, 1, 31, 0, tzinfo=UTC), 1, 40, datetime(2027, 2, 28, tzinfo=UTC),
     datetime(2027, 3, 31, tzinfo=UTC)),
    # leap day anchor: the next year's period starts on Feb 28
    (datetime(2028, 2, 29, 9, 30, 15, tzinfo=UTC), 12, 7, datetime(2029, 2, 28, 9, 30, 15, tzinfo=UTC),
     datetime(2029, 3, 7, 9, 30, 15, tzinfo=UTC)),
])
def test_windows_on_month_ends_and_leap_years(anchor, k, days, start, end):
    period = credit_period(anchor, k)
    window = window_of(period.start, period.end, days)
    assert (window.start, window.end) == (start, end)


anchors = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2032, 12, 31),
                       timezones=st.just(UTC)).map(lambda at: at.replace(microsecond=0))


@given(anchor=anchors, k=st.integers(0, 40), days=st.integers(1, 40), offset=st.integers(-5, 5))
def test_a_window_opens_and_closes_exactly_on_its_boundaries(anchor, k, days, offset):
    period = credit_period(anchor, k)
    window = window_of(period.start, period.end, days)
    assert window.start == period.start
    assert window.end == min(period.start + timedelta(days=days), period.end)
    second = timedelta(seconds=1)
    # open from its first second to its last, closed one second before and from its end on
    assert open_window(period.start, period.end, days, window.start) == window
    assert open_window(period.start, period.end, days, window.end - second) == window
    assert open_window(period.start, period.end, days, window.end) is None
    assert open_window(period.start, period.end, days, period.start - second) is None
    at = window.end + offset * second
    assert (open_window(period.start, period.end, days, at) is not None) == (offset < 0)
    assert open_window(period.start, period.end, None, window.start) is None


zones = st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC",
                         "America/Santiago", "Pacific/Chatham"])
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31),
                        timezones=st.just(UTC))


@given(instant=instants, zone=zones)
def test_the_day_a_daily_limit_counts_in_starts_at_local_midnight(instant, zone):
    day = free_day(instant, zone)
    local = ZoneInfo(zone)
    second = timedelta(seconds=1)
    assert day.starts_at <= instant < day.ends_at
    # The day runs from the first instant of its local date to the first of the next: midnight,
    # except where the clocks jump forward at midnight (Santiago, Chatham): then 01:00.
    assert day.starts_at.astimezone(local).date() == day.day
    assert (day.starts_at - second).astimezone(local).date() == day.day - timedelta(days=1)
    assert day.ends_at.astimezone(local).date() == day.day + timedelta(days=1)
    assert (day.ends_at - second).astimezone(local).date() == day.day
    for edge in (day.starts_at, day.ends_at):
        if edge.astimezone(local).time().isoformat() != "00:00:00":  # only where midnight doesn't exist
            midnight = datetime.combine(edge.astimezone(local).date(), datetime.min.time(), tzinfo=local)
            assert midnight.astimezone(UTC).astimezone(local) != midnight
    assert free_day(day.ends_at, zone).starts_at == day.ends_at  # the next day starts where this one ends


@pytest.mark.parametrize("zone, day, hours", [
    ("Europe/Paris", "2026-03-29", 23),  # clocks go forward: a 23-hour day
    ("Europe/Paris", "2026-10-25", 25),  # and back: a 25-hour day
    ("America/New_York", "2026-03-08", 23),
    ("America/New_York", "2026-11-01", 25),
    ("America/Santiago", "2026-09-06", 23),  # forward at midnight: the day starts at 01:00
])
def test_a_daylight_saving_day_is_counted_from_midnight_to_midnight(zone, day, hours):
    noon = datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=ZoneInfo(zone))
    counted = free_day(noon, zone)
    assert counted.key == day
    assert counted.ends_at - counted.starts_at == timedelta(hours=hours)
