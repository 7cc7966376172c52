"""Unlimited windows, pure: a plan makes a feature free for some days from the start of each
billing period.

The billing period here is the credit period: the month whose plan credits are granted together
(a monthly plan's term; each month of a quarterly or yearly one). A window starts with it and
lasts `days` days (exact 24-hour days from the period's start instant), cut short by the period's
end; it is half-open, like the periods: free from its start, paying again from its end.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from creditflow.kit.periods import Period


def window_of(period_start: datetime, period_end: datetime, days: int) -> Period:
    """The unlimited window of the billing period [period_start, period_end)."""
    return Period(period_start, min(period_start + timedelta(days=days), period_end))


def open_window(period_start: datetime, period_end: datetime, days: int | None, now: datetime) -> Period | None:
    """The window `now` falls in, or None (no window for the feature, or outside it)."""
    if not days:
        return None
    window = window_of(period_start, period_end, days)
    return window if window.contains(now) else None
