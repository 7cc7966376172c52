"""Time proration (the unused part of a term, to the second): tables by term, month ends,
leap years, first and last seconds, and properties: nothing created or lost in the split; a
preview equals the charge."""

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.kit.periods import Term, term_period
from creditflow.subscription.proration import immediate_change_charge, split_term


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "anchor, term, paid, at, unused",
    [
        # Standard monthly from 03-10 10:00, cut on 03-25 12:00: 1,375,200 of 2,678,400 s left.
        (utc(2026, 3, 10, 10), Term.monthly, 3000, utc(2026, 3, 25, 12), 1540),
        # The first second of a term: everything is unused.
        (utc(2026, 3, 10, 10), Term.monthly, 3000, utc(2026, 3, 10, 10), 3000),
        # The last second of a term: 1 s of 2,678,400 left, worth 0.001 cent.
        (utc(2026, 3, 10, 10), Term.monthly, 3000, utc(2026, 4, 10, 9, 59, 59), 0),
        # At (or after) the end, nothing is left.
        (utc(2026, 3, 10, 10), Term.monthly, 3000, utc(2026, 4, 10, 10), 0),
        # February in a common year: 28 days; halfway is 14 days.
        (utc(2026, 2, 1), Term.monthly, 3000, utc(2026, 2, 15), 1500),
        # February in a leap year: 29 days; 14 of 29 days left of 3000 = 1448.27...
        (utc(2028, 2, 1), Term.monthly, 3000, utc(2028, 2, 16), 1448),
        # Anchored on 31 Jan: the term ends 28 Feb (28 days), half of it is 14 days.
        (utc(2026, 1, 31), Term.monthly, 3000, utc(2026, 2, 14), 1500),
        # Quarterly 7650 from 01-15: 90 days; 15 Feb leaves 59 days = 5015.
        (utc(2026, 1, 15), Term.quarterly, 7650, utc(2026, 2, 15), 5015),
        # Yearly 25200 from 2026-01-01: 365 days; 1 July leaves 184 days = 12703.56 -> 12704.
        (utc(2026, 1, 1), Term.yearly, 25200, utc(2026, 7, 1), 12704),
        # Yearly across a leap day: 2027-03-01 to 2028-03-01 is 366 days; 183 days left = 12600.
        (utc(2027, 3, 1), Term.yearly, 25200, utc(2027, 8, 31), 12600),
        # A half that rounds up: 1 cent over 2 seconds, cut in the middle.
        (utc(2026, 3, 1), Term.monthly, 1, utc(2026, 3, 16, 12), 1),
    ],
)
def test_unused_value_table(anchor, term, paid, at, unused):
    split = split_term(paid, term_period(anchor, term, 0), at)
    assert split.unused == unused
    assert split.used + split.unused == paid


def test_the_exact_seconds_are_used():
    period = term_period(utc(2026, 3, 10, 10), Term.monthly, 0)
    split = split_term(3000, period, utc(2026, 3, 25, 12))
    assert split.seconds_left == 15 * 86400 + 22 * 3600
    assert split.seconds_used + split.seconds_left == 31 * 86400


@pytest.mark.parametrize(
    "new_price, unused, balance, due, applied, to_balance",
    [
        (5000, 1540, 0, 3460, 0, 0),  # the upgrade of the issue
        (5000, 1540, 1000, 2460, 1000, 0),  # an account balance pays first
        (5000, 1540, 9000, 0, 3460, 0),  # ... and may pay all of it
        (900, 2000, 0, 0, 0, 1100),  # a negative remainder goes to the account balance
        (3000, 3000, 0, 0, 0, 0),
    ],
)
def test_immediate_change_charge(new_price, unused, balance, due, applied, to_balance):
    charge = immediate_change_charge(new_price - unused, balance)
    assert (charge.amount_due, charge.balance_applied, charge.to_account_balance) == (due, applied, to_balance)


anchors = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(timezone.utc))


@given(anchor=anchors, term=st.sampled_from(list(Term)), paid=st.integers(0, 10_000_000),
       fraction=st.fractions(min_value=0, max_value=1))
def test_used_plus_unused_is_what_was_paid(anchor, term, paid, fraction):
    period = term_period(anchor, term, 0)
    at = period.start + timedelta(seconds=int(period.seconds * fraction))
    split = split_term(paid, period, at)
    assert split.used + split.unused == paid
    # Each part is the exact proportion, rounded to the nearest minor unit.
    exact_unused = Fraction(paid * split.seconds_left, period.seconds)
    assert abs(split.unused - exact_unused) <= Fraction(1, 2)
    assert 0 <= split.unused <= paid


@given(new_price=st.integers(0, 10**7), unused=st.integers(0, 10**7), balance=st.integers(0, 10**7))
def test_charge_conserves_money(new_price, unused, balance):
    charge = immediate_change_charge(new_price - unused, balance)
    # What is charged, what the balance pays, and what goes back to the balance settle the net.
    assert charge.amount_due + charge.balance_applied - charge.to_account_balance == new_price - unused
    assert charge.amount_due >= 0 and charge.to_account_balance >= 0
    assert charge.balance_applied <= balance
