"""Plan changes (U2-U6, D1, C1, C2), subscribing from Free, cancelling and resuming (X1-X3, U5)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from creditflow.catalog.rules import classify_change
from creditflow.kit.errors import Conflict, CreditflowError, NotFound
from creditflow.kit.periods import Term, add_months
from creditflow.subscription.change import cancel_scheduled_change, change_subscription, preview_change
from creditflow.subscription.service import cancel_subscription, resume_subscription, subscribe
from creditflow.web import views
from creditflow.web.billing.pages import HOME, BillingPages
from creditflow.web.messages import plain
from creditflow.web.rendering import Formatter
from creditflow.web.security import BrowserSession


def add_routes(router: APIRouter, pages: BillingPages) -> None:
    ctx = pages.ctx

    # --- plan changes (U2-U6, D1) ----------------------------------------------------------

    @router.get("/billing/change")
    @pages.guarded
    async def change_start(request: Request, plan: str = "", term: str = ""):
        """Upgrade, step 1: when it should take effect (Immediate is the default)."""
        session = pages.session_of(request)
        sub = pages.live_sub(session.customer)
        target, term_value = ctx.catalog.plan(plan), ctx.catalog.term(term).value
        decision = classify_change(ctx.catalog, sub.plan, sub.term, target.code, term_value)
        return pages.render(request, session, "billing/change_timing.html", {
            "title": f"{decision.kind.capitalize()} to {target.name}", "sub": sub, "kind": decision.kind,
            "target": target, "term": term_value, "term_label": views.TERM_LABELS[term_value],
            "price": target.price(Term(term_value)), "current": ctx.catalog.plan(sub.plan),
            "end_of_period_blocked": ("Your subscription is set to cancel, so nothing can be scheduled for the "
                                      "end of the period. Resume it first, or upgrade now."
                                      if sub.cancel_at_period_end else None),
        })

    @router.post("/billing/change/quote")
    @pages.guarded
    async def change_quote(request: Request):
        """Price the change (a quote) and show it for review."""
        session = pages.session_of(request)
        form = await pages.form_of(request, session)
        try:
            sub = pages.live_sub(session.customer)
            quote = preview_change(ctx, sub.id, plan=form.get("plan", ""), term=form.get("term", ""),
                                   timing=form.get("timing") or "immediate")
        except CreditflowError as exc:
            return pages.go(request, session, HOME, "error", plain(exc))
        return pages.go(request, session, f"/billing/change/review/{quote.id}")

    @router.get("/billing/change/review/{quote_id}")
    @pages.guarded
    async def change_review(request: Request, quote_id: str):
        session = pages.session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            quote = views.customer_quote(db, session.customer, quote_id)
            sub = views.live_subscription(db, session.customer)
        if sub is None or sub.id != quote.subscription_id:
            raise NotFound("no such quote", param="quote")
        target = ctx.catalog.plan(quote.plan)
        replaces = None
        if quote.timing == "end_of_period" and sub.scheduled_plan:
            replaces = f"{ctx.catalog.plan(sub.scheduled_plan).name} ({views.TERM_LABELS[sub.scheduled_term].lower()})"
        return pages.render(request, session, "billing/change_review.html", {
            "title": f"Review your {quote.kind}", "quote": quote, "sub": sub, "target": target,
            "term_label": views.TERM_LABELS[quote.term], "unit": views.TERM_UNITS[quote.term],
            "current": ctx.catalog.plan(sub.plan), "current_term_label": views.TERM_LABELS[sub.term],
            "features": [ctx.catalog.features[f].label for f in sorted(target.features) if f in ctx.catalog.features],
            "replaces": replaces, "used": quote.used_at is not None,
        })

    @router.post("/billing/change/confirm")
    @pages.guarded
    async def change_confirm(request: Request):
        session = pages.session_of(request)
        form = await pages.form_of(request, session)
        with ctx.db.transaction(readonly=True) as db:
            quote = views.customer_quote(db, session.customer, form.get("quote", ""))
        target = ctx.catalog.plan(quote.plan)
        what = f"{target.name} ({views.TERM_LABELS[quote.term].lower()})"
        try:
            result = change_subscription(ctx, quote.subscription_id, plan=quote.plan, term=quote.term,
                                         timing=quote.timing, quote=quote.id)
        except CreditflowError as exc:
            if exc.code in ("quote_expired", "quote_stale"):
                return requote(request, session, quote, plain(exc))
            return pages.go(request, session, HOME, "error", plain(exc))
        fmt = pages.customer_formatter(session.customer)
        if quote.timing == "immediate":
            text = f"You're now on {what}. We charged {fmt.money(quote.amount_due)}."
            if quote.amount_due == 0:
                text = f"You're now on {what}. Nothing was charged: your credit covered it."
        else:
            text = (f"Your {quote.kind} to {what} is scheduled for {fmt.date(quote.effective_at)}. "
                    "Nothing was charged today.")
            if result.replaced:
                old = ctx.catalog.plan(result.replaced["plan"]).name
                text += f" It replaces the change to {old} that was scheduled."
        return pages.go(request, session, HOME, "success", text)

    def requote(request: Request, session: BrowserSession, quote, message: str) -> Response:
        """The quote went stale: price the same change again and show it, saying why."""
        try:
            fresh = preview_change(ctx, quote.subscription_id, plan=quote.plan, term=quote.term, timing=quote.timing)
        except CreditflowError as exc:
            return pages.go(request, session, HOME, "error", plain(exc))
        return pages.go(request, session, f"/billing/change/review/{fresh.id}", "error", message)

    @router.post("/billing/scheduled-change/cancel")
    @pages.guarded
    async def scheduled_change_cancel(request: Request):
        """C2: drop the scheduled change; the current plan continues."""
        session = pages.session_of(request)
        await pages.form_of(request, session)
        try:
            sub = pages.live_sub(session.customer)
            dropped = ctx.catalog.plan(sub.scheduled_plan).name if sub.scheduled_plan else None
            sub = cancel_scheduled_change(ctx, sub.id)
        except CreditflowError as exc:
            return pages.go(request, session, HOME, "error", plain(exc))
        current = ctx.catalog.plan(sub.plan).name
        return pages.go(request, session, HOME, "success",
                        f"The scheduled change to {dropped} is cancelled. You stay on {current}.")

    # --- subscribing from Free -------------------------------------------------------------

    @router.get("/billing/subscribe")
    @pages.guarded
    async def subscribe_review(request: Request, plan: str = "", term: str = ""):
        session = pages.session_of(request)
        target, term_value = ctx.catalog.plan(plan), ctx.catalog.term(term).value
        with ctx.db.transaction(readonly=True) as db:
            if views.live_subscription(db, session.customer) is not None:
                raise Conflict("You already have a subscription; change it from the billing page.",
                               code="subscription_exists")
            customer = views.get_customer(db, session.customer)
            now = ctx.now_for(db, session.customer)
        return pages.render(request, session, "billing/subscribe_review.html", {
            "title": f"Subscribe to {target.name}", "target": target, "term": term_value,
            "term_label": views.TERM_LABELS[term_value], "unit": views.TERM_UNITS[term_value],
            "price": target.price(Term(term_value)), "now": now,
            "renews_at": add_months(now, Term(term_value).months), "has_payment_method": bool(customer.payment_method),
            "features": [ctx.catalog.features[f].label for f in sorted(target.features) if f in ctx.catalog.features],
        }, customer=customer)

    @router.post("/billing/subscribe")
    @pages.guarded
    async def subscribe_confirm(request: Request):
        session = pages.session_of(request)
        form = await pages.form_of(request, session)
        try:
            sub = subscribe(ctx, session.customer, form.get("plan", ""), form.get("term", ""))
        except CreditflowError as exc:
            return pages.go(request, session, HOME, "error", plain(exc))
        plan = ctx.catalog.plan(sub.plan)
        return pages.go(request, session, HOME, "success",
                        f"Welcome to {plan.name}! Your {Formatter(ctx.catalog.currency).credits(plan.monthly_credits)} "
                        "plan credits are ready.")

    # --- cancelling and resuming (X1-X3, U5) -----------------------------------------------

    @router.get("/billing/cancel")
    @pages.guarded
    async def cancel_review(request: Request):
        session = pages.session_of(request)
        sub = pages.live_sub(session.customer)
        return pages.render(request, session, "billing/cancel.html", {
            "title": "Cancel your subscription", "sub": sub, "plan": ctx.catalog.plan(sub.plan),
            "free_daily": ctx.catalog.free.daily_credits,
            "scheduled": ctx.catalog.plan(sub.scheduled_plan) if sub.scheduled_plan else None,
        })

    @router.post("/billing/cancel")
    @pages.guarded
    async def cancel_confirm(request: Request):
        session = pages.session_of(request)
        await pages.form_of(request, session)
        try:
            sub = pages.live_sub(session.customer)
            sub = cancel_subscription(ctx, sub.id, at_period_end=True)
        except CreditflowError as exc:
            return pages.go(request, session, HOME, "error", plain(exc))
        fmt = pages.customer_formatter(session.customer)
        return pages.go(request, session, HOME, "success",
                        f"Your subscription is cancelled. You keep {ctx.catalog.plan(sub.plan).name} and its credits "
                        f"until {fmt.date(sub.current_term_end)}, and won't be charged again.")

    @router.post("/billing/resume")
    @pages.guarded
    async def resume(request: Request):
        session = pages.session_of(request)
        await pages.form_of(request, session)
        try:
            sub = pages.live_sub(session.customer)
            sub = resume_subscription(ctx, sub.id)
        except CreditflowError as exc:
            return pages.go(request, session, HOME, "error", plain(exc))
        fmt = pages.customer_formatter(session.customer)
        return pages.go(request, session, HOME, "success",
                        f"Your subscription is back on. It renews on {fmt.date(sub.current_term_end)}.")
