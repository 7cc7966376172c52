"""The coupon arithmetic and rules (pure): a discount is never negative, never more than what it
applies to, and a percent is rounded half up to the minor unit; what a coupon applies to."""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.coupon.rules import (
    Target,
    applies_to,
    check_redeemable,
    discount_of,
    format_percent,
    parse_percent,
    periods_after_first,
    periods_from_next,
)
from creditflow.invoicing.tax import TaxTreatment, price
from creditflow.kit.errors import Conflict, InvalidRequest

amounts = st.integers(min_value=-10**9, max_value=10**12)
percents_bp = st.integers(min_value=1, max_value=10_000)


@given(amount=amounts, bp=percents_bp)
def test_a_percent_off_is_never_negative_never_over_and_rounded_half_up(amount, bp):
    off = discount_of(amount, percent_off_bp=bp, amount_off=None)
    assert 0 <= off <= max(amount, 0)
    if amount > 0:
        exact = Fraction(amount * bp, 10_000)
        assert abs(off - exact) <= Fraction(1, 2)
        assert off - exact != Fraction(-1, 2)  # a half goes up, never down


@given(amount=amounts, fixed=st.integers(min_value=1, max_value=10**12))
def test_an_amount_off_is_never_negative_and_never_over(amount, fixed):
    off = discount_of(amount, percent_off_bp=None, amount_off=fixed)
    assert off == (min(fixed, amount) if amount > 0 else 0)


@given(amounts=st.lists(st.integers(min_value=-10**6, max_value=10**7), min_size=1, max_size=4), bp=percents_bp,
       rate=st.sampled_from([None, "0", "7.7", "19", "20", "25"]), inclusive=st.booleans())
def test_an_invoice_priced_with_a_discount_adds_up_and_never_goes_below_zero(amounts, bp, rate, inclusive):
    from decimal import Decimal

    treatment = TaxTreatment("XX" if rate else None, Decimal(rate) if rate else None, inclusive)
    subtotal = sum(amounts)
    off = discount_of(max(subtotal, 0), percent_off_bp=bp, amount_off=None)
    priced = price(amounts, treatment, discount=off)
    assert priced.discount == off
    assert priced.total == (priced.subtotal - priced.discount + (0 if inclusive else priced.tax))
    if subtotal >= 0:
        assert priced.total >= 0


@pytest.mark.parametrize("amount, bp, off", [
    (3000, 2000, 600), (999, 5000, 500), (1, 5000, 1), (3, 5000, 2), (2, 2500, 1), (1, 2500, 0),
    (900, 10_000, 900), (2295, 1250, 287), (0, 5000, 0), (-500, 5000, 0),
])
def test_percent_examples(amount, bp, off):
    assert discount_of(amount, percent_off_bp=bp, amount_off=None) == off


@pytest.mark.parametrize("value, bp", [(20, 2000), ("20", 2000), ("12.5", 1250), ("0.01", 1), (100, 10_000),
                                       ("100.00", 10_000), (" 7.25 ", 725)])
def test_percent_input(value, bp):
    assert parse_percent(value) == bp


@pytest.mark.parametrize("value", [0, -1, 101, "100.01", "1.234", "abc", "NaN", "Infinity", True, 12.5, None])
def test_bad_percent_input(value):
    with pytest.raises(InvalidRequest) as raised:
        parse_percent(value)
    assert raised.value.param == "percent_off"


@pytest.mark.parametrize("bp, text", [(2000, "20"), (1250, "12.5"), (1, "0.01"), (10_000, "100")])
def test_percent_output(bp, text):
    assert format_percent(bp) == text


STANDARD_MONTHLY = Target(plan="standard", term="monthly")
BUNDLE = Target(bundle="credits_1000")


@pytest.mark.parametrize("plans, terms, bundles, target, applies", [
    ([], [], [], STANDARD_MONTHLY, True),
    ([], [], [], BUNDLE, True),
    (["standard"], [], [], STANDARD_MONTHLY, True),
    (["basic"], [], [], STANDARD_MONTHLY, False),
    (["standard"], [], [], BUNDLE, False),
    ([], ["yearly"], [], STANDARD_MONTHLY, False),
    ([], ["monthly"], [], STANDARD_MONTHLY, True),
    (["standard"], ["yearly"], [], STANDARD_MONTHLY, False),
    ([], [], ["credits_1000"], BUNDLE, True),
    ([], [], ["credits_5000"], BUNDLE, False),
    ([], [], ["credits_1000"], STANDARD_MONTHLY, False),
    (["standard"], [], ["credits_1000"], BUNDLE, True),
    (["standard"], [], ["credits_1000"], STANDARD_MONTHLY, True),
])
def test_what_a_coupon_applies_to(plans, terms, bundles, target, applies):
    assert applies_to(plans, terms, bundles, target) is applies


@pytest.mark.parametrize("duration, periods, after_first, from_next", [
    ("once", None, 0, 1), ("repeating", 3, 2, 3), ("repeating", 1, 0, 1), ("forever", None, None, None),
])
def test_how_many_charges_a_coupon_discounts(duration, periods, after_first, from_next):
    assert periods_after_first(duration, periods) == after_first
    assert periods_from_next(duration, periods) == from_next


def test_redeemable_until_the_instant_and_up_to_the_limit():
    until = datetime(2026, 4, 1, tzinfo=timezone.utc)
    check_redeemable(code="X", redeem_by=until, max_redemptions=2, times_redeemed=1,
                     now=datetime(2026, 3, 31, 23, 59, 59, tzinfo=timezone.utc))
    with pytest.raises(Conflict) as expired:
        check_redeemable(code="X", redeem_by=until, max_redemptions=None, times_redeemed=0, now=until)
    assert expired.value.code == "coupon_expired"
    with pytest.raises(Conflict) as exhausted:
        check_redeemable(code="X", redeem_by=None, max_redemptions=2, times_redeemed=2, now=until)
    assert exhausted.value.code == "coupon_exhausted"
