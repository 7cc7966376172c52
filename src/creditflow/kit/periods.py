"""Calendar arithmetic: terms, monthly boundaries from an anchor, half-open periods.

Boundary k of an anchor is `anchor + k months`, the day clamped to the month's length and
the time of day kept. Boundaries are always computed from the anchor, never from the
previous boundary, so 31 Jan -> 28 Feb -> 31 Mar (not 28 Mar).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from dateutil.relativedelta import relativedelta

from creditflow.kit.clock import utc


class Term(str, enum.Enum):
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"

    @property
    def months(self) -> int:
        return {"monthly": 1, "quarterly": 3, "yearly": 12}[self.value]


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open interval `[start, end)`."""

    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor + months`, clamping the day (relativedelta clamps; the time of day is kept)."""
    return utc(anchor) + relativedelta(months=months)


def month_boundary(anchor: datetime, k: int) -> datetime:
    return add_months(anchor, k)


def month_index_at(anchor: datetime, at: datetime) -> int:
    """The k with boundary(k) <= at < boundary(k+1); negative before the anchor."""
    anchor, at = utc(anchor), utc(at)
    k = (at.year - anchor.year) * 12 + (at.month - anchor.month)
    # The estimate is off by at most one either way because of day clamping and time of day.
    while month_boundary(anchor, k) > at:
        k -= 1
    while month_boundary(anchor, k + 1) <= at:
        k += 1
    return k


def credit_period(anchor: datetime, k: int) -> Period:
    """The k-th monthly credit period of an anchor."""
    return Period(month_boundary(anchor, k), month_boundary(anchor, k + 1))


def term_period(anchor: datetime, term: Term, n: int) -> Period:
    """The n-th term (0-based) of a subscription anchored at `anchor`."""
    return Period(month_boundary(anchor, n * term.months), month_boundary(anchor, (n + 1) * term.months))
