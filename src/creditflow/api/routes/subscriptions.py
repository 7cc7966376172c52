from __future__ import annotations

from fastapi import APIRouter, status

from creditflow.api.audit import as_support, subscription_customer
from creditflow.api.deps import Caller, Ctx
from creditflow.api.errors import PURCHASE_402, errors
from creditflow.api.schemas.subscription import (
    CancelRequest,
    ChangeConfirm,
    ChangeRequest,
    QuoteRead,
    SubscriptionCreate,
    SubscriptionRead,
)
from creditflow.coupon.service import discount_view
from creditflow.subscription.change import cancel_scheduled_change, preview_change
from creditflow.purchase.change import change_subscription
from creditflow.purchase.cancel import cancel_subscription
from creditflow.subscription.service import customer_subscription, read_subscription, resume_subscription
from creditflow.purchase.subscribe import subscribe

router = APIRouter(tags=["subscriptions"])


def _answer(ctx, sub, session=None, **extra) -> SubscriptionRead:
    """A subscription as the API answers it, with the discount it carries (read in the
    route's own unit of work when it has one)."""
    view = discount_view(session, sub) if session is not None else ctx.db.read(
        lambda session: discount_view(session, sub))
    return SubscriptionRead.of(sub, ctx.catalog, discount=view, **extra)


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED, response_model=SubscriptionRead,
             responses=errors(402, 404, 409, e402=PURCHASE_402, e404="No such customer, or `coupon_not_found`",
                              e409="`subscription_exists`, `plan_not_on_sale`, `coupon_not_applicable`, "
                                   "`coupon_expired`, `coupon_exhausted`"))
def create(body: SubscriptionCreate, ctx: Ctx, _: Caller):
    return _answer(ctx, subscribe(ctx, body.customer, body.plan, body.term, body.coupon))


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionRead, responses=errors(404))
def read(subscription_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        return _answer(ctx, read_subscription(session, subscription_id), session)


@router.get("/customers/{customer_id}/subscription", response_model=SubscriptionRead, responses=errors(404))
def read_for_customer(customer_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        return _answer(ctx, customer_subscription(session, customer_id), session)


@router.post("/subscriptions/{subscription_id}/preview_change", response_model=QuoteRead,
             responses=errors(403, 404, 409, e404="No such subscription, or `coupon_not_found`",
                              e409="`same_plan`, `plan_not_on_sale`, `subscription_not_active`, "
                                   "`timing_not_allowed`, `coupon_not_applicable`, `coupon_expired`, "
                                   "`coupon_exhausted`"))
def preview(subscription_id: str, body: ChangeRequest, ctx: Ctx, caller: Caller):
    quote = ctx.db.run(lambda session: preview_change(
        ctx, session, subscription_id, plan=body.plan, term=body.term, timing=body.timing,
        support=caller.is_support, coupon=body.coupon))
    return QuoteRead.of(quote)


@router.post("/subscriptions/{subscription_id}/change", response_model=SubscriptionRead,
             responses=errors(402, 403, 404, 409, e402=PURCHASE_402,
                              e403="`support_only`: an immediate downgrade, or `unused_value`, with a server key",
                              e409="`same_plan`, `plan_not_on_sale`, `quote_expired`, `quote_stale`, "
                                   "`subscription_busy`, "
                                   "`coupon_not_applicable`, `coupon_expired`, `coupon_exhausted`, ..."))
def change(subscription_id: str, body: ChangeConfirm, ctx: Ctx, caller: Caller):
    what = f"to {body.plan} ({body.term}), {body.timing.replace('_', ' ')}; unused value: {body.unused_value}"
    result = as_support(
        ctx, caller, lambda: change_subscription(
            ctx, subscription_id, plan=body.plan, term=body.term, timing=body.timing, quote=body.quote,
            support=caller.is_support, unused_value=body.unused_value, reason=body.reason, coupon=body.coupon),
        action="subscription.change", summary=f"Change {what}", done=f"Changed {what}", reason=body.reason,
        customer_id=subscription_customer(ctx, subscription_id) if caller.is_support else None,
        details={"subscription": subscription_id, **body.model_dump(mode="json", exclude={"reason"})})
    return _answer(ctx, result.subscription, replaced=result.replaced)


@router.delete("/subscriptions/{subscription_id}/scheduled_change", response_model=SubscriptionRead,
               responses=errors(404, 409, e409="`no_scheduled_change`"))
def delete_scheduled_change(subscription_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction() as session:
        return _answer(ctx, cancel_scheduled_change(ctx, session, subscription_id), session)


@router.post("/subscriptions/{subscription_id}/cancel", response_model=SubscriptionRead,
             responses=errors(402, 403, 404, 409,
                              e403="`support_only`: ending at once with a server key",
                              e409="`scheduled_upgrade_pending`, `subscription_ended`, ..."))
def cancel(subscription_id: str, ctx: Ctx, caller: Caller, body: CancelRequest | None = None):
    body = body or CancelRequest()
    when = "at the period end" if body.at_period_end else f"now; refund: {body.refund}"
    sub = as_support(
        ctx, caller, lambda: cancel_subscription(
            ctx, subscription_id, at_period_end=body.at_period_end, refund=body.refund, support=caller.is_support,
            reason=body.reason, actor=caller.key_id),
        action="subscription.cancel" if body.at_period_end else "subscription.end_now",
        summary=f"Cancel the subscription {when}", done=f"Cancelled the subscription {when}", reason=body.reason,
        customer_id=subscription_customer(ctx, subscription_id) if caller.is_support else None,
        details={"subscription": subscription_id, "at_period_end": body.at_period_end, "refund": body.refund})
    return _answer(ctx, sub)


@router.post("/subscriptions/{subscription_id}/resume", response_model=SubscriptionRead,
             responses=errors(404, 409, e409="`not_cancelling`"))
def resume(subscription_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction() as session:
        return _answer(ctx, resume_subscription(ctx, session, subscription_id), session)
