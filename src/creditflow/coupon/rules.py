"""What a coupon is worth and what it applies to (pure: no database, no clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from creditflow.kit.errors import Conflict, InvalidRequest
from creditflow.kit.money import round_half_up

DURATIONS = ("once", "repeating", "forever")


@dataclass(frozen=True)
class Target:
    """What a charge buys: a plan on a term, or a bundle."""

    plan: str | None = None
    term: str | None = None
    bundle: str | None = None

    @property
    def label(self) -> str:
        return f"bundle {self.bundle}" if self.bundle else f"plan {self.plan} ({self.term})"


def parse_percent(value) -> int:
    """A percent off (an int, or a decimal string with at most 2 decimals) as hundredths of a
    percent; 0 < percent <= 100."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidRequest("percent_off must be an integer or a decimal string, e.g. 20 or \"12.5\"",
                             param="percent_off")
    try:
        percent = Decimal(value) if isinstance(value, int) else Decimal(value.strip())
    except InvalidOperation:
        raise InvalidRequest("percent_off must be a number, e.g. 20 or \"12.5\"", param="percent_off") from None
    if not percent.is_finite() or percent.as_tuple().exponent < -2:
        raise InvalidRequest("percent_off takes at most 2 decimal places", param="percent_off")
    if not 0 < percent <= 100:
        raise InvalidRequest("percent_off must be more than 0 and at most 100", param="percent_off")
    return int(percent * 100)


def format_percent(bp: int) -> str:
    """Hundredths of a percent as the API writes a percent: 2000 -> "20", 1250 -> "12.5"."""
    return format((Decimal(bp) / 100).normalize(), "f")


def discount_of(amount: int, *, percent_off_bp: int | None, amount_off: int | None) -> int:
    """What a coupon takes off `amount` (minor units): the percent rounded half up with the one
    rounding function, or the fixed amount; never more than the amount, never negative."""
    if amount <= 0:
        return 0
    if percent_off_bp is not None:
        off = round_half_up(Fraction(amount * percent_off_bp, 10_000))
    else:
        off = amount_off or 0
    return max(0, min(off, amount))


def applies_to(plans: list[str], terms: list[str], bundles: list[str], target: Target) -> bool:
    """A coupon limited to nothing applies to everything. One limited to plans or terms
    applies to subscriptions within those limits (and to no bundle unless it names bundles);
    one limited to bundles applies to those bundles (and to no plan unless it names plans or
    terms)."""
    if not (plans or terms or bundles):
        return True
    if target.bundle is not None:
        return target.bundle in bundles
    if not (plans or terms):
        return False
    return (not plans or target.plan in plans) and (not terms or target.term in terms)


def check_redeemable(*, code: str, redeem_by: datetime | None, max_redemptions: int | None, times_redeemed: int,
                     now: datetime) -> None:
    """Conflict `coupon_expired` from `redeem_by` on, `coupon_exhausted` once used up."""
    if redeem_by is not None and now >= redeem_by:
        raise Conflict(f"coupon {code!r} could be redeemed until {redeem_by:%Y-%m-%d %H:%M} UTC",
                       code="coupon_expired", param="coupon")
    if max_redemptions is not None and times_redeemed >= max_redemptions:
        raise Conflict(f"coupon {code!r} has been redeemed its {max_redemptions} times",
                       code="coupon_exhausted", param="coupon")


def periods_after_first(duration: str, duration_periods: int | None) -> int | None:
    """Charges still discounted after the one the coupon was redeemed on (null: forever)."""
    if duration == "forever":
        return None
    if duration == "repeating":
        return max(0, (duration_periods or 1) - 1)
    return 0


def periods_from_next(duration: str, duration_periods: int | None) -> int | None:
    """Charges discounted when the coupon is put on a subscription between charges."""
    if duration == "forever":
        return None
    return duration_periods or 1 if duration == "repeating" else 1
