"""Credit amounts: exact decimals with at most three fractional digits, held as thousandths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, Inexact, InvalidOperation, localcontext
from functools import total_ordering

from creditflow.kit.errors import InvalidRequest

SCALE = 1000
# The shape of a credit string: ASCII digits, an optional minus sign (refused later where not
# meant) and decimals (at most three, checked after, so the message can say so).
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)
MAX_WHOLE = 10**12  # credits; far beyond any real balance, well inside a BIGINT of thousandths


@total_ordering
@dataclass(frozen=True, slots=True)
class Credits:
    """An amount of credits as an integer count of thousandths (`Credits(73500)` is 73.5)."""

    milli: int

    @classmethod
    def parse(cls, value: object, field: str = "amount", *, allow_negative: bool = False) -> "Credits":
        """Read a request value: a decimal string or a JSON number, at most 3 decimals."""
        if isinstance(value, Credits):
            result = value
        elif isinstance(value, str):
            result = cls._from_text(value, field)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
                raise InvalidRequest(f"{field} must be a decimal string or a number", param=field)
            try:
                # str() of a float is its shortest repr, so 73.5 reads as "73.5", not 73.4999...
                number = Decimal(str(value).strip())
            except InvalidOperation:
                raise InvalidRequest(f"{field} is not a number: {value!r}", param=field) from None
            if not number.is_finite():
                raise InvalidRequest(f"{field} must be finite", param=field)
            # Compared before scaling (comparisons are exact): "1e1000000" would overflow.
            if number.copy_abs() > MAX_WHOLE:
                raise InvalidRequest(f"{field} is too large", param=field)
            try:
                with localcontext() as ctx:
                    # Decimal arithmetic rounds to 28 digits; an input must never be rounded.
                    ctx.traps[Inexact] = True
                    scaled = number * SCALE
            except Inexact:
                scaled = None
            if scaled is None or scaled != scaled.to_integral_value():
                raise InvalidRequest(f"{field} has more than 3 decimal places", param=field)
            result = cls(int(scaled))
        if result.milli < 0 and not allow_negative:
            raise InvalidRequest(f"{field} must not be negative", param=field)
        return result

    @classmethod
    def _from_text(cls, value: str, field: str) -> "Credits":
        # Only plain ASCII decimals: Decimal() would also take "1_000", "1e3", " 5 " and
        # non-ASCII digits such as full-width or Arabic-Indic ones. Once the shape is known (digits,
        # at most three decimals) the thousandths are read exactly as integers: an amount is read on
        # every spend, and Decimal with its exactness checks costs several times more.
        shape = _DECIMAL.fullmatch(value)
        if not shape:
            raise InvalidRequest(f"{field} is not a number like \"73.5\" (ASCII digits, "
                                 f"at most 3 decimal places): {value!r}", param=field)
        fraction = shape.group(1) or ""  # with its point
        if len(fraction) > 4:
            raise InvalidRequest(f"{field} has more than 3 decimal places", param=field)
        negative = value.startswith("-")
        whole = value[negative:len(value) - len(fraction)].lstrip("0")
        # Length first: int() of a long string is slow, and refused past 4,300 digits.
        if len(whole) > len(str(MAX_WHOLE)):
            raise InvalidRequest(f"{field} is too large", param=field)
        milli = int(whole or "0") * SCALE + int(fraction[1:].ljust(3, "0"))
        if milli > MAX_WHOLE * SCALE:
            raise InvalidRequest(f"{field} is too large", param=field)
        return cls(-milli if negative else milli)

    @classmethod
    def whole(cls, credits: int) -> "Credits":
        return cls(credits * SCALE)

    def __str__(self) -> str:
        sign = "-" if self.milli < 0 else ""
        whole, frac = divmod(abs(self.milli), SCALE)
        if frac == 0:
            return f"{sign}{whole}"
        return f"{sign}{whole}.{frac:03d}".rstrip("0")

    def __add__(self, other: "Credits") -> "Credits":
        return Credits(self.milli + other.milli)

    def __sub__(self, other: "Credits") -> "Credits":
        return Credits(self.milli - other.milli)

    def __neg__(self) -> "Credits":
        return Credits(-self.milli)

    def __lt__(self, other: "Credits") -> bool:
        return self.milli < other.milli

    def __bool__(self) -> bool:
        return self.milli != 0


Credits.ZERO = Credits(0)  # type: ignore[attr-defined]
ZERO = Credits.ZERO
