"""Coupons: support creates them; anyone with a key reads one by its code and puts one on a
subscription. Purchases take a coupon's code in their own requests (`coupon`)."""

from __future__ import annotations

from fastapi import APIRouter, status

from creditflow.api.audit import as_support
from creditflow.api.deps import Caller, Ctx, Support
from creditflow.api.errors import errors
from creditflow.api.schemas.coupon import CouponCreate, CouponRead, DiscountCreate
from creditflow.api.schemas.subscription import SubscriptionRead
from creditflow.coupon.service import CouponInput, create_coupon, discount_view, get_coupon
from creditflow.customer.service import customer_now
from creditflow.subscription.discount import apply_coupon

router = APIRouter(tags=["coupons"])


@router.post("/coupons", status_code=status.HTTP_201_CREATED, response_model=CouponRead,
             responses=errors(403, 409, e403="`forbidden`: needs a support key", e409="`coupon_exists`"))
def create(body: CouponCreate, ctx: Ctx, caller: Support):
    """Support: a new coupon; its `code` is the promotion code customers use (unique, any case)."""
    data = CouponInput(
        code=body.code, duration=body.duration, percent_off=body.percent_off, amount_off=body.amount_off,
        duration_periods=body.duration_periods, plans=tuple(body.plans), terms=tuple(body.terms),
        bundles=tuple(body.bundles), redeem_by=body.redeem_by, max_redemptions=body.max_redemptions)

    def work():
        with ctx.db.transaction() as session:
            return CouponRead.of(create_coupon(ctx, session, data, customer_now(ctx, session, None)))

    return as_support(ctx, caller, work, action="coupon.create", summary=f"Create coupon {body.code}",
                      done=f"Created coupon {body.code}", reason=None, customer_id=None,
                      details=body.model_dump(mode="json"))


@router.get("/coupons/{code}", response_model=CouponRead, responses=errors(404, e404="`coupon_not_found`"))
def read(code: str, ctx: Ctx, _: Caller):
    return ctx.db.read(lambda session: CouponRead.of(get_coupon(session, code)))


@router.post("/subscriptions/{subscription_id}/discount", response_model=SubscriptionRead,
             responses=errors(404, 409, e404="No such subscription, or `coupon_not_found`",
                              e409="`coupon_not_applicable`, `coupon_expired`, `coupon_exhausted`, "
                                   "`subscription_ended`"))
def put_discount(subscription_id: str, body: DiscountCreate, ctx: Ctx, _: Caller):
    """Put a coupon on the subscription: it discounts the next charges (the next one for
    `once`, N for `repeating`, every one for `forever`), replacing any discount it had."""
    with ctx.db.transaction() as session:
        sub = apply_coupon(ctx, session, subscription_id, body.coupon)
        session.flush()
        return SubscriptionRead.of(sub, ctx.catalog, discount=discount_view(session, sub))
