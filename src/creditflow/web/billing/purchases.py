"""Buying credit top-ups (T1): choose a bundle, review, confirm."""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from sqlalchemy import select
from starlette.requests import Request

from creditflow.credits.topups import purchase_top_up
from creditflow.kit.errors import CreditflowError, PaymentFailed
from creditflow.payment.models import PaymentAttempt
from creditflow.web import views
from creditflow.web.billing.pages import HOME, BillingPages
from creditflow.web.messages import plain


def add_routes(router: APIRouter, pages: BillingPages) -> None:
    ctx = pages.ctx

    # --- credit top-ups (T1) ---------------------------------------------------------------

    @router.get("/billing/credits/buy")
    @pages.guarded
    async def topup_choose(request: Request):
        session = pages.session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            view = views.billing_page(ctx, db, session.customer, invoice_limit=0, history_limit=0)
        return pages.render(request, session, "billing/topup_choose.html", {
            "title": "Buy credits", "page": view, "selected": request.query_params.get("bundle"),
        }, customer=view.customer)

    @router.get("/billing/credits/buy/review")
    @pages.guarded
    async def topup_review(request: Request, bundle: str = ""):
        session = pages.session_of(request)
        bundle_def = ctx.catalog.bundle(bundle)
        with ctx.db.transaction(readonly=True) as db:
            view = views.billing_page(ctx, db, session.customer, invoice_limit=0, history_limit=0)
        if view.topup_blocked:
            return pages.go(request, session, HOME, "error", view.topup_blocked)
        return pages.render(request, session, "billing/topup_review.html", {
            "title": "Review your purchase", "bundle": bundle_def, "page": view,
            # The purchase's idempotency reference: a double submit buys once.
            "reference": f"web_{secrets.token_urlsafe(12)}",
        }, customer=view.customer)

    @router.post("/billing/credits/buy")
    @pages.guarded
    async def topup_buy(request: Request):
        session = pages.session_of(request)
        form = await pages.form_of(request, session)
        try:
            topup = purchase_top_up(ctx, session.customer, bundle=form.get("bundle", ""),
                                    reference=form.get("reference") or None)
        except PaymentFailed as exc:
            return pages.go(request, session, HOME, "error", plain(_with_decline_reason(exc, session.customer)))
        except CreditflowError as exc:
            return pages.go(request, session, HOME, "error", plain(exc))
        fmt = pages.customer_formatter(session.customer)
        if topup.replayed:
            return pages.go(request, session, HOME, "success",
                            f"That purchase already went through: {fmt.credits(topup.credits)} credits were added.")
        return pages.go(request, session, HOME, "success",
                        f"Added {fmt.credits(topup.credits)} credits. We charged {fmt.money(topup.amount_paid)}.")

    def _with_decline_reason(exc: PaymentFailed, customer_id: str) -> CreditflowError:
        """A failed top-up says only that it failed; the attempt knows why (a declined card)."""
        if exc.code != "payment_failed":
            return exc
        with ctx.db.transaction(readonly=True) as db:
            reason = db.scalar(select(PaymentAttempt.failure_message).where(
                PaymentAttempt.customer_id == customer_id, PaymentAttempt.status == "failed")
                .order_by(PaymentAttempt.created_at.desc(), PaymentAttempt.id.desc()).limit(1))
        return PaymentFailed(reason, code="payment_failed") if reason else exc
