from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime


class Coupon(Base):
    """A discount, named to customers by its `code` (the promotion code).

    Exactly one of `percent_off_bp` (hundredths of a percent: 2050 is 20.5%) and `amount_off`
    (minor units of the catalog's currency) is set. `times_redeemed` is only ever moved by one
    conditional UPDATE (`service.redeem`), so it never passes `max_redemptions`.
    """

    __tablename__ = "coupons"
    __table_args__ = (
        # The database refuses a use past the limit, whatever the code does.
        CheckConstraint("times_redeemed >= 0 AND (max_redemptions IS NULL OR times_redeemed <= max_redemptions)",
                        name="redemptions_within_limit"),
        CheckConstraint("(percent_off_bp IS NULL) <> (amount_off IS NULL)", name="one_kind_of_discount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    # The code in lower case: codes are unique and matched regardless of case.
    code_key: Mapped[str] = mapped_column(String(64), unique=True)
    percent_off_bp: Mapped[int | None] = mapped_column(Integer)
    amount_off: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    duration: Mapped[str] = mapped_column(String(16))  # once, repeating, forever
    duration_periods: Mapped[int | None] = mapped_column(Integer)
    plans: Mapped[list] = mapped_column(JSON, default=list)
    terms: Mapped[list] = mapped_column(JSON, default=list)
    bundles: Mapped[list] = mapped_column(JSON, default=list)
    redeem_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CouponRedemption(Base):
    """One use of a coupon by a customer, and what it was applied to. A purchase that fails
    gives its redemption back (`released_at` set, the coupon's count decremented)."""

    __tablename__ = "coupon_redemptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    coupon_id: Mapped[str] = mapped_column(ForeignKey("coupons.id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    # What it was applied to: subscribe, change, top_up, or subscription (POST .../discount).
    applied_to: Mapped[str] = mapped_column(String(16))
    # Not a foreign key: a first purchase that fails removes its subscription, and the
    # released redemption still says what it was for.
    subscription_id: Mapped[str | None] = mapped_column(String(40))
    invoice_id: Mapped[str | None] = mapped_column(String(40), index=True)
    plan: Mapped[str | None] = mapped_column(String(64))
    term: Mapped[str | None] = mapped_column(String(16))
    bundle: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)  # taken off the invoice, if any
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SubscriptionDiscount(Base):
    """The coupon a subscription's charges are discounted by, and for how many more charges.

    `periods_left` counts the charges still to be discounted after those already paid (null:
    forever); at 0 the discount ends with the current term."""

    __tablename__ = "subscription_discounts"

    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), primary_key=True)
    coupon_id: Mapped[str] = mapped_column(ForeignKey("coupons.id"), index=True)
    redemption_id: Mapped[str] = mapped_column(String(40))
    periods_left: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
