from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr

from creditflow.api.schemas.common import Id, InstantIn, InstantOut, PositiveMoneyIn, Read, Resource, Request
from creditflow.coupon.rules import format_percent

Codes = Annotated[list[Id], Field(max_length=50)]


class CouponCreate(Request):
    code: Annotated[str, Field(min_length=1, max_length=64, description="The promotion code customers type: "
                                                                         "letters, digits, '-' or '_'")]
    percent_off: StrictInt | Annotated[StrictStr, Field(max_length=16)] | None = Field(
        default=None, description="More than 0, at most 100: an integer or a decimal string with at most 2 "
                                  "decimals (\"12.5\"). Exactly one of percent_off and amount_off")
    amount_off: PositiveMoneyIn | None = Field(default=None, description="Minor units of the catalog's currency")
    duration: Literal["once", "repeating", "forever"]
    duration_periods: StrictInt | None = Field(default=None, description="Repeating only (required): how many "
                                                                         "charges, the first included")
    plans: Codes = Field(default_factory=list, description="Plan codes it is limited to (none: any)")
    terms: Codes = Field(default_factory=list, description="Terms it is limited to (none: any)")
    bundles: Codes = Field(default_factory=list, description="Bundle codes it is limited to")
    redeem_by: InstantIn | None = None
    max_redemptions: StrictInt | None = None


class CouponRead(Resource):
    object: Literal["coupon"] = "coupon"
    code: str
    percent_off: str | None = Field(description="A decimal string (\"20\", \"12.5\"), or null")
    amount_off: int | None
    currency: str | None = Field(description="The currency of amount_off; null for a percent off")
    duration: Literal["once", "repeating", "forever"]
    duration_periods: int | None
    plans: list[str]
    terms: list[str]
    bundles: list[str]
    redeem_by: InstantOut | None
    max_redemptions: int | None
    times_redeemed: int
    created_at: InstantOut

    @classmethod
    def of(cls, coupon) -> "CouponRead":
        return cls(
            id=coupon.id, code=coupon.code,
            percent_off=None if coupon.percent_off_bp is None else format_percent(coupon.percent_off_bp),
            amount_off=coupon.amount_off, currency=coupon.currency if coupon.amount_off is not None else None,
            duration=coupon.duration, duration_periods=coupon.duration_periods, plans=list(coupon.plans),
            terms=list(coupon.terms), bundles=list(coupon.bundles), redeem_by=coupon.redeem_by,
            max_redemptions=coupon.max_redemptions, times_redeemed=coupon.times_redeemed,
            created_at=coupon.created_at)


class DiscountCreate(Request):
    coupon: Id = Field(description="A coupon's code")


class DiscountRead(Read):
    coupon: str = Field(description="The coupon's code")
    ends_after_period: InstantOut | None = Field(
        default=None, description="The end of the last term it discounts; null: forever")

    @classmethod
    def of(cls, view) -> "DiscountRead | None":
        return None if view is None else super().of(view)


__all__ = ["CouponCreate", "CouponRead", "DiscountCreate", "DiscountRead", "datetime"]
