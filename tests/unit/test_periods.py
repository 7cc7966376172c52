import calendar
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.kit.periods import (
    Period,
    Term,
    add_months,
    credit_period,
    month_boundary,
    month_index_at,
    term_period,
)

UTC = timezone.utc


def at(year, month, day, hour=0, minute=0, second=0, micro=0, tz=UTC):
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


# --- Tables ----------------------------------------------------------------------------------

JAN31 = at(2026, 1, 31, 14, 5, 6, 789)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (0, at(2026, 1, 31, 14, 5, 6, 789)),
        (1, at(2026, 2, 28, 14, 5, 6, 789)),
        (2, at(2026, 3, 31, 14, 5, 6, 789)),   # back to the 31st, not the 28th
        (3, at(2026, 4, 30, 14, 5, 6, 789)),
        (4, at(2026, 5, 31, 14, 5, 6, 789)),
        (5, at(2026, 6, 30, 14, 5, 6, 789)),
        (6, at(2026, 7, 31, 14, 5, 6, 789)),
        (7, at(2026, 8, 31, 14, 5, 6, 789)),
        (8, at(2026, 9, 30, 14, 5, 6, 789)),
        (9, at(2026, 10, 31, 14, 5, 6, 789)),
        (10, at(2026, 11, 30, 14, 5, 6, 789)),
        (11, at(2026, 12, 31, 14, 5, 6, 789)),
        (12, at(2027, 1, 31, 14, 5, 6, 789)),
        (25, at(2028, 2, 29, 14, 5, 6, 789)),  # leap year
        (-1, at(2025, 12, 31, 14, 5, 6, 789)),
        (-11, at(2025, 2, 28, 14, 5, 6, 789)),
    ],
)
def test_boundaries_of_a_31_january_anchor(k, expected):
    assert add_months(JAN31, k) == expected
    assert month_boundary(JAN31, k) == expected


@pytest.mark.parametrize("day", range(1, 32))
@pytest.mark.parametrize(("year", "february_days"), [(2026, 28), (2028, 29), (2100, 28), (2000, 29)])
def test_january_anchor_day_clamped_in_february_kept_in_march(day, year, february_days):
    anchor = at(year, 1, day, 9, 30, 15)
    assert add_months(anchor, 1) == at(year, 2, min(day, february_days), 9, 30, 15)
    assert add_months(anchor, 2) == at(year, 3, day, 9, 30, 15)


@pytest.mark.parametrize(
    ("anchor", "k", "expected"),
    [
        (at(2026, 3, 31, 8), 1, at(2026, 4, 30, 8)),
        (at(2026, 3, 31, 8), -1, at(2026, 2, 28, 8)),
        (at(2026, 4, 30, 8), 1, at(2026, 5, 30, 8)),   # the 30th stays the 30th
        (at(2026, 5, 31, 8), 1, at(2026, 6, 30, 8)),
        (at(2026, 5, 31, 8), 3, at(2026, 8, 31, 8)),
        (at(2028, 2, 29, 8), 1, at(2028, 3, 29, 8)),   # a leap-day anchor refreshes on the 29th
        (at(2028, 2, 29, 8), 12, at(2029, 2, 28, 8)),
        (at(2028, 2, 29, 8), 48, at(2032, 2, 29, 8)),
        (at(2026, 12, 31, 23, 59, 59, 999999), 2, at(2027, 2, 28, 23, 59, 59, 999999)),
        (at(2026, 1, 1), 0, at(2026, 1, 1)),
        # Aware but not UTC: normalised to UTC first (31 Jan 23:00 +01:00 is 31 Jan 22:00 UTC).
        (at(2026, 1, 31, 23, tz=timezone(timedelta(hours=1))), 1, at(2026, 2, 28, 22)),
    ],
)
def test_add_months(anchor, k, expected):
    result = add_months(anchor, k)
    assert result == expected
    assert result.tzinfo == UTC


def test_naive_anchor_is_refused():
    with pytest.raises(ValueError, match="naive"):
        add_months(datetime(2026, 1, 31), 1)
    with pytest.raises(ValueError, match="naive"):
        month_index_at(JAN31, datetime(2026, 3, 1))


@pytest.mark.parametrize(
    ("instant", "k"),
    [
        (JAN31, 0),
        (JAN31 - timedelta(microseconds=1), -1),
        (at(2026, 2, 28, 14, 5, 6, 788), 0),    # a microsecond before boundary 1
        (at(2026, 2, 28, 14, 5, 6, 789), 1),    # boundary 1 itself (half-open)
        (at(2026, 3, 1), 1),
        (at(2026, 3, 31, 14, 5, 6, 788), 1),
        (at(2026, 3, 31, 14, 5, 6, 789), 2),
        (at(2027, 1, 31, 14, 5, 6, 789), 12),
        (at(2025, 12, 31, 14, 5, 6, 789), -1),
        (at(2025, 12, 31, 14, 5, 6, 788), -2),
    ],
)
def test_month_index_at(instant, k):
    assert month_index_at(JAN31, instant) == k


@pytest.mark.parametrize(
    ("anchor", "term", "n", "first_day", "last_day"),
    [
        (JAN31, Term.monthly, 0, date(2026, 1, 31), date(2026, 2, 28)),
        (JAN31, Term.monthly, 1, date(2026, 2, 28), date(2026, 3, 31)),
        (JAN31, Term.quarterly, 0, date(2026, 1, 31), date(2026, 4, 30)),
        (JAN31, Term.quarterly, 1, date(2026, 4, 30), date(2026, 7, 31)),
        (JAN31, Term.quarterly, 3, date(2026, 10, 31), date(2027, 1, 31)),
        (JAN31, Term.yearly, 0, date(2026, 1, 31), date(2027, 1, 31)),
        (at(2028, 2, 29, 6), Term.yearly, 0, date(2028, 2, 29), date(2029, 2, 28)),
        (at(2028, 2, 29, 6), Term.yearly, 3, date(2031, 2, 28), date(2032, 2, 29)),
    ],
)
def test_term_period(anchor, term, n, first_day, last_day):
    """Terms start and end on the given days, at the anchor's time of day."""
    period = term_period(anchor, term, n)
    assert period == Period(
        datetime.combine(first_day, anchor.timetz()), datetime.combine(last_day, anchor.timetz())
    )


@pytest.mark.parametrize(("term", "months"), [("monthly", 1), ("quarterly", 3), ("yearly", 12)])
def test_term_months(term, months):
    assert Term(term).months == months


def test_period_is_half_open():
    period = credit_period(JAN31, 1)
    assert period == Period(at(2026, 2, 28, 14, 5, 6, 789), at(2026, 3, 31, 14, 5, 6, 789))
    assert period.contains(period.start)
    assert period.contains(period.end - timedelta(microseconds=1))
    assert not period.contains(period.end)
    assert not period.contains(period.start - timedelta(microseconds=1))
    assert period.seconds == 31 * 86400


# --- Properties ------------------------------------------------------------------------------


@st.composite
def anchors(draw):
    """Aware UTC instants, 1990-2100, with month ends (28-31) drawn often."""
    year = draw(st.integers(1990, 2100))
    month = draw(st.integers(1, 12))
    days = calendar.monthrange(year, month)[1]
    day = draw(st.one_of(st.integers(1, days), st.integers(max(1, days - 3), days)))
    return datetime(
        year, month, day,
        draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59)),
        draw(st.sampled_from([0, 1, 999_999]) | st.integers(0, 999_999)),
        tzinfo=UTC,
    )


ks = st.integers(0, 300)


def _expected_month(anchor: datetime, k: int) -> tuple[int, int]:
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + k, 12)
    return year, month0 + 1


@given(anchors(), ks)
def test_boundaries_strictly_increase(anchor, k):
    assert month_boundary(anchor, k) < month_boundary(anchor, k + 1)


@given(anchors(), ks)
def test_consecutive_credit_periods_neither_overlap_nor_leave_gaps(anchor, k):
    this, following = credit_period(anchor, k), credit_period(anchor, k + 1)
    assert this.start < this.end == following.start < following.end
    assert this.start == month_boundary(anchor, k)


@given(anchors(), ks)
def test_boundary_keeps_the_anchor_day_and_the_time_of_day(anchor, k):
    boundary = month_boundary(anchor, k)
    year, month = _expected_month(anchor, k)
    assert (boundary.year, boundary.month) == (year, month)
    assert boundary.day == min(anchor.day, calendar.monthrange(year, month)[1])
    assert boundary.timetz() == anchor.timetz()
    assert boundary.utcoffset() == timedelta(0)


@given(anchors(), ks)
def test_month_index_of_a_boundary_is_its_k(anchor, k):
    assert month_index_at(anchor, month_boundary(anchor, k)) == k


@given(anchors(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=366 * 25)))
def test_month_index_places_an_instant_in_its_period(anchor, offset):
    instant = anchor + offset
    k = month_index_at(anchor, instant)
    assert k >= 0
    assert month_boundary(anchor, k) <= instant < month_boundary(anchor, k + 1)


@given(anchors(), st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=366 * 5)))
def test_month_index_is_negative_before_the_anchor(anchor, offset):
    instant = anchor - offset
    k = month_index_at(anchor, instant)
    assert k < 0
    assert month_boundary(anchor, k) <= instant < month_boundary(anchor, k + 1)


@given(anchors(), st.sampled_from(list(Term)), st.integers(0, 100))
def test_terms_tile_the_timeline_and_hold_whole_credit_periods(anchor, term, n):
    this, following = term_period(anchor, term, n), term_period(anchor, term, n + 1)
    assert this.end == following.start
    assert term_period(anchor, term, 0).start == anchor

    first, last = n * term.months, (n + 1) * term.months - 1
    assert credit_period(anchor, first).start == this.start
    assert credit_period(anchor, last).end == this.end
    # Exactly term.months credit periods start inside the term.
    assert month_index_at(anchor, this.start) == first
    assert month_index_at(anchor, this.end - timedelta(microseconds=1)) == last
