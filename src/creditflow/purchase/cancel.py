"""Cancelling: at the end of the term, or (support only) at once, with the unused time
refunded or not."""

from __future__ import annotations

from creditflow.context import Context
from creditflow.customer.service import customer_now
from creditflow.kit.errors import Conflict, Forbidden, InvalidRequest
from creditflow.purchase.refund import create_refund, unused_value_refund
from creditflow.subscription.models import Subscription
from creditflow.subscription.repository import get_subscription
from creditflow.subscription.service import cancel_at_period_end, end_subscription


def cancel_subscription(ctx: Context, subscription_id: str, *, at_period_end: bool = True, refund: str = "none",
                        support: bool = False, reason: str | None = None, actor: str | None = None) -> Subscription:
    if refund not in ("none", "prorated"):
        raise InvalidRequest("refund must be none or prorated", param="refund")
    if not at_period_end and not support:
        raise Forbidden("ending a subscription at once is a support action", code="support_only",
                        param="at_period_end")
    if refund != "none" and at_period_end:
        raise InvalidRequest("a refund only goes with ending the subscription at once", param="refund")
    to_refund: list[tuple[str, int]] = []
    with ctx.db.transaction() as session:
        sub = get_subscription(session, subscription_id, for_update=True)
        now = customer_now(ctx, session, sub.customer_id)
        if sub.status == "ended":
            raise Conflict("the subscription has ended", code="subscription_ended")
        if at_period_end:
            cancel_at_period_end(ctx, session, sub, now)
        else:
            if refund == "prorated":
                to_refund = unused_value_refund(session, sub, now)
            end_subscription(ctx, session, sub, now=now, reason="canceled_by_support")
    for invoice_id, amount in to_refund:
        # The subscription has ended already; the refund gives back the unused time only.
        create_refund(ctx, invoice_id, amount=amount, reason=reason or "ended by support",
                      actor=actor, end_subscription=False)
    with ctx.db.transaction(readonly=True) as session:
        return session.get(Subscription, subscription_id)
