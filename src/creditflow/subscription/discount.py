"""Putting a coupon on an existing subscription (`POST /v1/subscriptions/{id}/discount`): it
discounts the subscription's next charges, as many as its duration says."""

from __future__ import annotations

from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.coupon.rules import Target
from creditflow.coupon.service import put_on_subscription
from creditflow.customer.service import customer_now
from creditflow.kit.errors import Conflict
from creditflow.subscription.models import Subscription
from creditflow.subscription.repository import get_subscription


def apply_coupon(ctx: Context, session: Session, subscription_id: str, code: str) -> Subscription:
    """Redeem `code` for the subscription (replacing any discount it had); 409 when the
    subscription has ended."""
    sub = get_subscription(session, subscription_id, for_update=True)
    now = customer_now(ctx, session, sub.customer_id)
    if sub.status == "ended":
        raise Conflict("the subscription has ended", code="subscription_ended", param="subscription")
    put_on_subscription(session, subscription_id=sub.id, customer_id=sub.customer_id,
                        target=Target(plan=sub.plan, term=sub.term), code=code, now=now)
    return sub
