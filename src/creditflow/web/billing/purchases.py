"""Buying credit top-ups: choose a bundle, review, confirm."""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from creditflow.payment.attempts import last_failure
from creditflow.purchase.top_up import purchase_top_up
from creditflow.kit.errors import CreditflowError, PaymentFailed
from creditflow.web import views
from creditflow.coupon.rules import Target
from creditflow.web.billing.coupons import promotion
from creditflow.web.billing.pages import HOME, PostedForm, Visitor
from creditflow.web.rendering import HTMLErrorRoute

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)


@router.get("/billing/credits/buy")
def topup_choose(visit: Visitor, bundle: str | None = None):
    with visit.ctx.db.transaction(readonly=True) as db:
        view = views.billing_page(visit.ctx, db, visit.customer_id, invoice_limit=0, history_limit=0)
    return visit.render("billing/topup_choose.html", {"title": "Buy credits", "page": view, "selected": bundle},
                        customer=view.customer)


@router.get("/billing/credits/buy/review")
def topup_review(visit: Visitor, bundle: str = "", coupon: str = ""):
    bundle_def = visit.ctx.catalog.bundle_for_sale(bundle)
    with visit.ctx.db.transaction(readonly=True) as db:
        view = views.billing_page(visit.ctx, db, visit.customer_id, invoice_limit=0, history_limit=0)
        promo = promotion(visit.ctx, db, view.customer, coupon, Target(bundle=bundle_def.code), bundle_def.price)
    if view.topup_blocked:
        return visit.go(HOME, "error", view.topup_blocked)
    return visit.render("billing/topup_review.html", {
        "title": "Review your purchase", "bundle": bundle_def, "page": view,
        "charge": promo.charge, "promo": promo,
        "promo_form": {"method": "get", "action": "/billing/credits/buy/review", "hidden": {"bundle": bundle_def.code}},
        # The purchase's idempotency reference: a double submit buys once.
        "reference": f"web_{secrets.token_urlsafe(12)}",
    }, customer=view.customer)


@router.post("/billing/credits/buy")
def topup_buy(visit: Visitor, form: PostedForm):
    """Charge for the bundle and add its credits (the gateway is called from this thread)."""
    try:
        topup = purchase_top_up(visit.ctx, visit.customer_id, bundle=form.get("bundle", ""),
                                reference=form.get("reference") or None, coupon=form.get("coupon") or None)
    except PaymentFailed as exc:
        return visit.failed(_with_decline_reason(visit.ctx, exc, visit.customer_id))
    except CreditflowError as exc:
        return visit.failed(exc)
    fmt = visit.formatter()
    if topup.replayed:
        return visit.done(f"That purchase already went through: {fmt.credits(topup.credits)} credits were added.")
    return visit.done(f"Added {fmt.credits(topup.credits)} credits. We charged {fmt.money(topup.amount_paid)}.")


def _with_decline_reason(ctx, exc: PaymentFailed, customer_id: str) -> CreditflowError:
    """A failed top-up says only that it failed; its payment attempt knows why (a declined card)."""
    if exc.code != "payment_failed":
        return exc
    reason = ctx.db.read(lambda db: getattr(last_failure(db, customer_id), "failure_message", None))
    return PaymentFailed(reason, code="payment_failed") if reason else exc
