"""Money: integer minor units and the one rounding function.

Money never touches a float. Every division that can leave a remainder goes through
`round_half_up`, so a rounding rule changes in exactly one place.
"""

from __future__ import annotations

from fractions import Fraction


def round_half_up(value: Fraction | int) -> int:
    """Round an exact rational to the nearest integer, halves away from zero."""
    if isinstance(value, float):  # a float has already lost the exact value
        raise TypeError("round_half_up takes an int or a Fraction, never a float")
    value = Fraction(value)
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    whole, remainder = divmod(magnitude.numerator, magnitude.denominator)
    if 2 * remainder >= magnitude.denominator:
        whole += 1
    return sign * whole


def prorate(amount: int, part: int, whole: int) -> int:
    """`amount * part / whole` rounded half up to the minor unit (e.g. the unused share of a term)."""
    if whole <= 0:
        raise ValueError("whole must be positive")
    return round_half_up(Fraction(amount * part, whole))


def format_money(amount: int, currency: str) -> str:
    """Human form for pages and PDFs: 2950 usd -> "$29.50". Two-decimal currencies only."""
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 100)
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency.lower())
    if symbol:
        return f"{sign}{symbol}{major:,}.{minor:02d}"
    return f"{sign}{major:,}.{minor:02d} {currency.upper()}"
