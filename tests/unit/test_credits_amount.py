from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.kit.credits import Credits
from creditflow.kit.errors import InvalidRequest


@pytest.mark.parametrize(
    ("value", "milli"),
    [
        ("73.5", 73_500),
        (73.5, 73_500),
        ("0.001", 1),
        ("8000", 8_000_000),
        (8000, 8_000_000),
        (0.1, 100),                  # a float reads as its shortest repr, "0.1"
        (Decimal("1.230"), 1_230),
        ("0", 0),
        ("-0", 0),
        ("1000000000000", 10**15),   # the largest amount
        (Credits(42), 42),
    ],
)
def test_parse_accepts(value, milli):
    assert Credits.parse(value) == Credits(milli)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1.0001", "more than 3 decimal places"),
        (1.0001, "more than 3 decimal places"),
        ("1e-4", "not a number"),
        (0.1 + 0.2, "more than 3 decimal places"),  # 0.30000000000000004
        # More digits than Decimal's 28-digit context: must not be rounded to 1.
        ("1.0000000000000000000000000001", "more than 3 decimal places"),
        ("-1", "must not be negative"),
        (-0.5, "must not be negative"),
        ("NaN", "not a number"),
        ("sNaN", "not a number"),
        ("Infinity", "not a number"),
        ("-Infinity", "not a number"),
        (float("inf"), "must be finite"),
        (float("nan"), "must be finite"),
        ("1000000000000.001", "too large"),
        ("1e1000000", "not a number"),
        ("10000000000000000000000000000000000000", "too large"),  # overflow-safe
        ("0.0010", "more than 3 decimal places"),  # the string form is exact: three decimals at most
        (" 12 ", "not a number"),
        ("1e3", "not a number"),
        ("1_000", "not a number"),
        ("\uff11\uff12", "not a number"),  # full-width digits
        ("\u0663", "not a number"),  # an Arabic-Indic digit
        ("", "not a number"),
        ("abc", "not a number"),
        ("1,5", "not a number"),
        (True, "decimal string or a number"),
        (False, "decimal string or a number"),
        (None, "decimal string or a number"),
        ([1], "decimal string or a number"),
    ],
)
def test_parse_refuses(value, reason):
    with pytest.raises(InvalidRequest, match=reason) as error:
        Credits.parse(value, "cost")
    assert error.value.param == "cost"
    assert error.value.code == "invalid_request"


def test_parse_negative_only_when_allowed():
    assert Credits.parse("-1.5", allow_negative=True) == Credits(-1_500)
    with pytest.raises(InvalidRequest):
        Credits.parse(Credits(-1))


@pytest.mark.parametrize(
    ("milli", "text"),
    [
        (8_000_000, "8000"),
        (73_500, "73.5"),
        (1, "0.001"),
        (10, "0.01"),
        (1_230, "1.23"),
        (0, "0"),
        (-1_500, "-1.5"),
        (-1, "-0.001"),
    ],
)
def test_str(milli, text):
    assert str(Credits(milli)) == text


@given(st.integers(-10**15, 10**15))
def test_str_parses_back(milli):
    assert Credits.parse(str(Credits(milli)), allow_negative=True) == Credits(milli)


def test_arithmetic_and_order():
    a, b = Credits.parse("73.5"), Credits.parse("0.5")
    assert a + b == Credits.whole(74)
    assert a - b == Credits.whole(73)
    assert -b == Credits(-500)
    assert b < a and a >= b
    assert not Credits(0) and Credits(1)


@given(st.decimals(min_value=-10**13, max_value=10**13, places=3, allow_nan=False, allow_infinity=False),
       st.integers(min_value=0, max_value=3))
def test_a_string_reads_as_its_decimal_does(number, leading_zeros):
    """Text is read without Decimal; it must give exactly what the Decimal of the same text gives,
    refusals included."""
    text = format(number, "f")
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    text = sign + "0" * leading_zeros + digits

    def read(value):
        try:
            return Credits.parse(value, allow_negative=True)
        except InvalidRequest as exc:
            return exc.message.split(": ")[0].replace("a decimal string or a number", "")

    assert read(text) == read(Decimal(text))
