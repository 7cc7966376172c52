"""Changing plan: scheduled for the end of the term at no charge, or now as a purchase (the new
price less the unused time, charged before the change applies)."""

from __future__ import annotations

from creditflow.context import Context
from creditflow.coupon.rules import Target
from creditflow.coupon.service import put_on_subscription
from creditflow.purchase.checkout import collect, open_collection
from creditflow.purchase.refund import create_refund, unused_value_refund
from creditflow.subscription.change import ChangeResult, lock_for_change, open_immediate_change, schedule_change
from creditflow.subscription.repository import get_subscription


def change_subscription(ctx: Context, subscription_id: str, *, plan: str, term: str, timing: str = "immediate",
                        quote: str | None = None, support: bool = False, unused_value: str = "balance",
                        reason: str | None = None, coupon: str | None = None) -> ChangeResult:
    """Make a change: charge and apply it now, or schedule it for the end of the term. Support
    may send the unused value of an immediate downgrade back to the card (`unused_value`). A
    `coupon` discounts the charge made now and the next ones as its duration says; with a
    change at the end of the period it goes on the subscription, for the charges from then."""
    with ctx.db.transaction() as session:
        sub, terms, now = lock_for_change(ctx, session, subscription_id, plan=plan, term=term, timing=timing,
                                          quote=quote, support=support, unused_value=unused_value, reason=reason,
                                          coupon=coupon)
        if timing == "end_of_period":
            result = schedule_change(ctx, session, sub, terms, now)
            if coupon is not None:
                put_on_subscription(session, subscription_id=sub.id, customer_id=sub.customer_id,
                                    target=Target(plan=terms.plan, term=terms.term), code=coupon, now=now)
            return result
        # An immediate change removes the scheduled one (the answer says which).
        replaced = None if sub.scheduled_plan is None else {
            "plan": sub.scheduled_plan, "term": sub.scheduled_term, "kind": sub.scheduled_kind}
        to_refund = unused_value_refund(session, sub, now) if unused_value == "refund" else []
        invoice = open_immediate_change(ctx, session, sub, terms, now, unused_value=unused_value, reason=reason)
        begin = open_collection(ctx, session, invoice, now)
        invoice_id = invoice.id
    collect(ctx, invoice_id, now, begin).raise_unless_paid("the change applies once it is reconciled.")
    for refunded_invoice, amount in to_refund:
        create_refund(ctx, refunded_invoice, amount=amount, reason=reason or "immediate downgrade",
                      end_subscription=False)
    with ctx.db.transaction(readonly=True) as session:
        return ChangeResult(get_subscription(session, subscription_id), replaced)
