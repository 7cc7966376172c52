"""Buying a top-up bundle: its price charged, then its credits granted."""

from __future__ import annotations

from sqlalchemy import select

from creditflow.context import Context
from creditflow.coupon.rules import Target
from creditflow.coupon.service import check_coupon, discount_on, redeem_on_invoice
from creditflow.credits import inputs
from creditflow.credits.topups import PURPOSE, TopUp, top_up_of
from creditflow.customer.billing import bill_to
from creditflow.customer.service import customer_now, get_customer
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import LineDraft, create_invoice
from creditflow.kit.errors import Conflict
from creditflow.purchase.checkout import collect, open_collection
from creditflow.subscription.options import raise_if, top_up_refusal
from creditflow.subscription.repository import live_subscription


def purchase_top_up(ctx: Context, customer_id: str, *, bundle: str, reference: str | None = None,
                    coupon: str | None = None) -> TopUp:
    """Buy a bundle: charge its price, then grant its credits.

    A client `reference` (the API's Idempotency-Key) makes a retried purchase return the first
    one instead of charging again.

    A `coupon` (a code) limited to the bundle, or to nothing, discounts the price.

    Errors: InvalidRequest `unknown_bundle`, Conflict `bundle_not_on_sale`, NotFound (customer), Conflict
    `subscription_required` (Free or past_due: nothing charged), Conflict `reference_reused`
    (the reference bought another bundle), PaymentFailed `payment_failed` (nothing granted) or
    `payment_pending` (the gateway's answer is unknown; reconciled later, never charged twice).
    """
    bundle_def = ctx.catalog.bundle(bundle)
    reference = inputs.optional_reference(reference)
    customer_id = inputs.identifier(customer_id, "customer")

    with ctx.db.transaction() as session:
        customer = get_customer(session, customer_id, for_update=True)  # serialises purchases
        now = customer_now(ctx, session, customer_id)
        dedupe_key = f"topup:{customer_id}:{reference}" if reference is not None else None
        if dedupe_key is not None:
            earlier = session.scalar(select(Invoice).where(Invoice.dedupe_key == dedupe_key))
            if earlier is not None:
                if earlier.details.get("bundle") != bundle_def.code:
                    raise Conflict(f"reference {reference!r} was used to buy {earlier.details.get('bundle')}",
                                   code="reference_reused", param="reference")
                return top_up_of(session, earlier, replayed=True)
        ctx.catalog.bundle_for_sale(bundle_def.code)  # a replayed purchase above is answered still
        sub = live_subscription(session, customer_id)
        raise_if(top_up_refusal(sub), param="customer")
        target = Target(bundle=bundle_def.code)
        found = check_coupon(session, coupon, target, now) if coupon is not None else None
        discount = discount_on(found, bundle_def.price, new=True) if found is not None else None
        invoice = create_invoice(
            session, ctx.catalog, customer_id=customer_id, purpose=PURPOSE, now=now,
            bill_to=bill_to(customer),
            discount=discount.amount if discount else 0, discount_description=discount and discount.description,
            subscription_id=sub.id, dedupe_key=dedupe_key,
            details={"bundle": bundle_def.code, "credits": str(bundle_def.credits), "reference": reference},
            lines=[LineDraft("top_up", bundle_def.name, bundle_def.price)],
        )
        if found is not None:
            redeem_on_invoice(session, found, discount, invoice, applied_to="top_up", target=target, now=now)
        invoice_id = invoice.id
        begin = open_collection(ctx, session, invoice, now)
    collect(ctx, invoice_id, now, begin)
    with ctx.db.transaction(readonly=True) as session:
        return top_up_of(session, session.get(Invoice, invoice_id))
