"""Subscribing: the plan's price for the term charged; the subscription starts only if paid."""

from __future__ import annotations

from creditflow.context import Context
from creditflow.customer.service import customer_now, get_customer
from creditflow.purchase.checkout import collect, open_collection
from creditflow.subscription.models import Subscription
from creditflow.subscription.repository import get_subscription
from creditflow.subscription.service import open_subscription


def subscribe(ctx: Context, customer_id: str, plan: str, term: str, coupon: str | None = None) -> Subscription:
    plan_def = ctx.catalog.plan(plan)
    term_def = ctx.catalog.term(term)
    with ctx.db.transaction() as session:
        customer = get_customer(session, customer_id, for_update=True)
        now = customer_now(ctx, session, customer_id)
        sub, invoice = open_subscription(ctx, session, customer, plan_def, term_def, now, coupon)
        sub_id, invoice_id = sub.id, invoice.id
        begin = open_collection(ctx, session, invoice, now)
    collect(ctx, invoice_id, now, begin).raise_unless_paid(
        "the subscription starts once it is reconciled, if the charge went through.")
    with ctx.db.transaction(readonly=True) as session:
        return get_subscription(session, sub_id)
