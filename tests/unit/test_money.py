from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.kit.money import format_money, prorate, round_half_up


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # exact
        (0, 0),
        (7, 7),
        (-7, -7),
        (Fraction(10, 5), 2),
        # below, at and above a half
        (Fraction(49, 100), 0),
        (Fraction(1, 2), 1),
        (Fraction(51, 100), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(2999, 2), 1500),
        # negatives: halves away from zero, symmetric with the positives
        (Fraction(-49, 100), 0),
        (Fraction(-1, 2), -1),
        (Fraction(-3, 2), -2),
        (Fraction(-5, 2), -3),
        (Fraction(-1, 3), 0),
        (Fraction(-2, 3), -1),
        # far from zero: no float on the way
        (Fraction(10**20 + 1, 2), 5 * 10**19 + 1),
    ],
)
def test_round_half_up(value, expected):
    assert round_half_up(value) == expected


@pytest.mark.parametrize(
    ("amount", "part", "whole", "expected"),
    [
        (2900, 29, 29, 2900),      # all of it
        (2900, 0, 29, 0),          # none of it
        (2900, 10, 29, 1000),      # exact
        (1000, 1, 3, 333),         # 333.33 down
        (1000, 2, 3, 667),         # 666.67 up
        (1, 1, 2, 1),              # 0.5 up
        (3, 1, 2, 2),              # 1.5 up
        (2999, 15, 30, 1500),      # 1499.5 up
        (-1000, 1, 3, -333),
        (-1, 1, 2, -1),            # -0.5 away from zero
        (0, 5, 7, 0),
        (9900, 2_419_199, 2_419_200, 9900),  # one second short of a 28-day month
    ],
)
def test_prorate(amount, part, whole, expected):
    assert prorate(amount, part, whole) == expected


@pytest.mark.parametrize("whole", [0, -1])
def test_prorate_needs_a_positive_whole(whole):
    with pytest.raises(ValueError):
        prorate(100, 1, whole)


@given(st.integers(-10**12, 10**12), st.integers(1, 10**7), st.data())
def test_prorate_is_the_nearest_integer(amount, whole, data):
    part = data.draw(st.integers(0, whole))
    exact = Fraction(amount * part, whole)
    result = prorate(amount, part, whole)
    assert abs(result - exact) <= Fraction(1, 2)
    # The two shares of a split differ from the whole by at most one minor unit.
    assert abs(result + prorate(amount, whole - part, whole) - amount) <= 1


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (2950, "usd", "$29.50"),
        (5, "EUR", "€0.05"),
        (-2950, "gbp", "-£29.50"),
        (123456789, "usd", "$1,234,567.89"),
        (1000, "chf", "10.00 CHF"),
    ],
)
def test_format_money(amount, currency, text):
    assert format_money(amount, currency) == text
