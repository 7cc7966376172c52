"""The Billing and Subscription page (SPEC U2-U6, D1, C1-C3, X1-X3, T1, P1).

The browser arrives through a one-time portal link and gets a session bound to that one
customer; every object a request names (invoice, quote) is checked against it, and another
customer's answers 404 exactly like a missing one. Every POST carries the session's CSRF
token and ends in a redirect (post/redirect/get) with a one-time message.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from fastapi import APIRouter
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from creditflow.credits.topups import purchase_top_up
from creditflow.invoicing.pdf import invoice_filename, render_invoice_pdf
from creditflow.kit.errors import Conflict, CreditflowError, NotFound, PaymentFailed
from creditflow.kit.periods import Term
from creditflow.payment.models import PaymentAttempt
from creditflow.portal.service import redeem_portal_token
from creditflow.subscription.change import cancel_scheduled_change, change_subscription, preview_change
from creditflow.subscription.service import cancel_subscription, resume_subscription, subscribe
from creditflow.web import views
from creditflow.web.app import Web
from creditflow.web.messages import plain
from creditflow.web.rendering import STATIC_DIR, Formatter, HTMLErrorRoute, error_page, render
from creditflow.web.security import BrowserSession, csrf_ok

HOME = "/billing"


class SessionEnded(Exception):
    """No valid billing session: the page must be opened again through the host app."""


def billing_router(web: Web) -> APIRouter:
    router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
    ctx = web.ctx
    codec = web.billing_sessions

    # --- plumbing ----------------------------------------------------------------------------

    def session_of(request: Request) -> BrowserSession:
        session = codec.load(request)
        if session is None or not session.customer:
            raise SessionEnded()
        return session

    async def form_of(request: Request, session: BrowserSession) -> dict:
        form = await request.form()
        if not csrf_ok(session, form.get("csrf_token")):
            raise _CsrfFailed()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    def page(request: Request, session: BrowserSession, template: str, data: dict, *, status: int = 200,
             customer=None) -> Response:
        flash = session.take_flash()
        if customer is None:
            with ctx.db.transaction(readonly=True) as db:
                customer = views.get_customer(db, session.customer)
        response = render(template, {
            "area": "billing", "csrf": session.csrf, "flash": flash, "return_url": session.return_url,
            "customer": customer, "fmt": Formatter(customer.currency, customer.timezone), **data,
        }, status=status)
        if flash is not None:
            codec.save(response, request, session)
        return response

    def go(request: Request, session: BrowserSession, url: str, kind: str | None = None,
           text: str | None = None) -> Response:
        return web.redirect(request, codec, session, url, flash=(kind, text) if kind else None)

    def guarded(handler):
        """Turn an ended session or a bad CSRF token into a page that says so."""
        import functools

        @functools.wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            try:
                return await handler(request, *args, **kwargs)
            except SessionEnded:
                return error_page(401, "Your billing session has ended. Please open the billing page again "
                                       "from the app.")
            except _CsrfFailed:
                return error_page(403, "This form has expired. Please go back, reload the page and try again. "
                                       "Nothing was changed.", home=HOME)
        return wrapper

    def live_sub(customer_id: str):
        with ctx.db.transaction(readonly=True) as db:
            sub = views.live_subscription(db, customer_id)
        if sub is None:
            raise Conflict("You don't have a subscription.", code="no_subscription")
        return sub

    # --- entering --------------------------------------------------------------------------

    @router.get("/billing/session/{token}")
    async def open_link(request: Request, token: str):
        """Use a portal link: once, within 5 minutes. Starts a session bound to its customer."""
        try:
            with ctx.db.transaction() as db:
                portal = redeem_portal_token(db, token, secret_key=web.secret_key, now=ctx.clock.now())
                customer_id, return_url = portal.customer_id, portal.return_url
        except NotFound:
            return error_page(404, "This link has expired or has already been used. Links to the billing page "
                                   "work once, for 5 minutes; please open the billing page again from the app.")
        session = codec.start()
        session.customer, session.return_url = customer_id, return_url
        return go(request, session, HOME)

    @router.get("/billing/static/creditflow.css")
    async def stylesheet():
        return FileResponse(STATIC_DIR / "creditflow.css", media_type="text/css",
                            headers={"Cache-Control": "public, max-age=3600"})

    # --- the page --------------------------------------------------------------------------

    @router.get("/billing")
    @guarded
    async def overview(request: Request):
        session = session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            view = views.billing_page(ctx, db, session.customer)
        return page(request, session, "billing/overview.html", {"page": view, "title": "Billing and subscription"},
                    customer=view.customer)

    # --- plan changes (U2-U6, D1) ----------------------------------------------------------

    @router.get("/billing/change")
    @guarded
    async def change_start(request: Request, plan: str = "", term: str = ""):
        """Upgrade, step 1: when it should take effect (Immediate is the default)."""
        session = session_of(request)
        sub = live_sub(session.customer)
        target, term_value = ctx.catalog.plan(plan), ctx.catalog.term(term).value
        from creditflow.catalog.rules import classify_change

        decision = classify_change(ctx.catalog, sub.plan, sub.term, target.code, term_value)
        return page(request, session, "billing/change_timing.html", {
            "title": f"{decision.kind.capitalize()} to {target.name}", "sub": sub, "kind": decision.kind,
            "target": target, "term": term_value, "term_label": views.TERM_LABELS[term_value],
            "price": target.price(Term(term_value)), "current": ctx.catalog.plan(sub.plan),
            "end_of_period_blocked": ("Your subscription is set to cancel, so nothing can be scheduled for the "
                                      "end of the period. Resume it first, or upgrade now."
                                      if sub.cancel_at_period_end else None),
        })

    @router.post("/billing/change/quote")
    @guarded
    async def change_quote(request: Request):
        """Price the change (a quote) and show it for review."""
        session = session_of(request)
        form = await form_of(request, session)
        try:
            sub = live_sub(session.customer)
            quote = preview_change(ctx, sub.id, plan=form.get("plan", ""), term=form.get("term", ""),
                                   timing=form.get("timing") or "immediate")
        except CreditflowError as exc:
            return go(request, session, HOME, "error", plain(exc))
        return go(request, session, f"/billing/change/review/{quote.id}")

    @router.get("/billing/change/review/{quote_id}")
    @guarded
    async def change_review(request: Request, quote_id: str):
        session = session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            quote = views.customer_quote(db, session.customer, quote_id)
            sub = views.live_subscription(db, session.customer)
        if sub is None or sub.id != quote.subscription_id:
            raise NotFound("no such quote", param="quote")
        target = ctx.catalog.plan(quote.plan)
        replaces = None
        if quote.timing == "end_of_period" and sub.scheduled_plan:
            replaces = f"{ctx.catalog.plan(sub.scheduled_plan).name} ({views.TERM_LABELS[sub.scheduled_term].lower()})"
        return page(request, session, "billing/change_review.html", {
            "title": f"Review your {quote.kind}", "quote": quote, "sub": sub, "target": target,
            "term_label": views.TERM_LABELS[quote.term], "unit": views.TERM_UNITS[quote.term],
            "current": ctx.catalog.plan(sub.plan), "current_term_label": views.TERM_LABELS[sub.term],
            "features": [ctx.catalog.features[f].label for f in sorted(target.features) if f in ctx.catalog.features],
            "replaces": replaces, "used": quote.used_at is not None,
        })

    @router.post("/billing/change/confirm")
    @guarded
    async def change_confirm(request: Request):
        session = session_of(request)
        form = await form_of(request, session)
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
            return go(request, session, HOME, "error", plain(exc))
        with ctx.db.transaction(readonly=True) as db:
            customer = views.get_customer(db, session.customer)
        fmt = Formatter(customer.currency, customer.timezone)
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
        return go(request, session, HOME, "success", text)

    def requote(request: Request, session: BrowserSession, quote, message: str) -> Response:
        """The quote went stale: price the same change again and show it, saying why."""
        try:
            fresh = preview_change(ctx, quote.subscription_id, plan=quote.plan, term=quote.term, timing=quote.timing)
        except CreditflowError as exc:
            return go(request, session, HOME, "error", plain(exc))
        return go(request, session, f"/billing/change/review/{fresh.id}", "error", message)

    @router.post("/billing/scheduled-change/cancel")
    @guarded
    async def scheduled_change_cancel(request: Request):
        """C2: drop the scheduled change; the current plan continues."""
        session = session_of(request)
        await form_of(request, session)
        try:
            sub = live_sub(session.customer)
            dropped = ctx.catalog.plan(sub.scheduled_plan).name if sub.scheduled_plan else None
            sub = cancel_scheduled_change(ctx, sub.id)
        except CreditflowError as exc:
            return go(request, session, HOME, "error", plain(exc))
        current = ctx.catalog.plan(sub.plan).name
        return go(request, session, HOME, "success",
                  f"The scheduled change to {dropped} is cancelled. You stay on {current}.")

    # --- subscribing from Free -------------------------------------------------------------

    @router.get("/billing/subscribe")
    @guarded
    async def subscribe_review(request: Request, plan: str = "", term: str = ""):
        session = session_of(request)
        target, term_value = ctx.catalog.plan(plan), ctx.catalog.term(term).value
        with ctx.db.transaction(readonly=True) as db:
            if views.live_subscription(db, session.customer) is not None:
                raise Conflict("You already have a subscription; change it from the billing page.",
                               code="subscription_exists")
            customer = views.get_customer(db, session.customer)
            now = ctx.now_for(db, session.customer)
        from creditflow.kit.periods import add_months

        return page(request, session, "billing/subscribe_review.html", {
            "title": f"Subscribe to {target.name}", "target": target, "term": term_value,
            "term_label": views.TERM_LABELS[term_value], "unit": views.TERM_UNITS[term_value],
            "price": target.price(Term(term_value)), "now": now,
            "renews_at": add_months(now, Term(term_value).months), "has_payment_method": bool(customer.payment_method),
            "features": [ctx.catalog.features[f].label for f in sorted(target.features) if f in ctx.catalog.features],
        }, customer=customer)

    @router.post("/billing/subscribe")
    @guarded
    async def subscribe_confirm(request: Request):
        session = session_of(request)
        form = await form_of(request, session)
        try:
            sub = subscribe(ctx, session.customer, form.get("plan", ""), form.get("term", ""))
        except CreditflowError as exc:
            return go(request, session, HOME, "error", plain(exc))
        plan = ctx.catalog.plan(sub.plan)
        return go(request, session, HOME, "success",
                  f"Welcome to {plan.name}! Your {Formatter(plan_currency(ctx)).credits(plan.monthly_credits)} "
                  "plan credits are ready.")

    # --- cancelling and resuming (X1-X3, U5) -----------------------------------------------

    @router.get("/billing/cancel")
    @guarded
    async def cancel_review(request: Request):
        session = session_of(request)
        sub = live_sub(session.customer)
        return page(request, session, "billing/cancel.html", {
            "title": "Cancel your subscription", "sub": sub, "plan": ctx.catalog.plan(sub.plan),
            "free_daily": ctx.catalog.free.daily_credits,
            "scheduled": ctx.catalog.plan(sub.scheduled_plan) if sub.scheduled_plan else None,
        })

    @router.post("/billing/cancel")
    @guarded
    async def cancel_confirm(request: Request):
        session = session_of(request)
        await form_of(request, session)
        try:
            sub = live_sub(session.customer)
            sub = cancel_subscription(ctx, sub.id, at_period_end=True)
        except CreditflowError as exc:
            return go(request, session, HOME, "error", plain(exc))
        with ctx.db.transaction(readonly=True) as db:
            customer = views.get_customer(db, session.customer)
        fmt = Formatter(customer.currency, customer.timezone)
        return go(request, session, HOME, "success",
                  f"Your subscription is cancelled. You keep {ctx.catalog.plan(sub.plan).name} and its credits "
                  f"until {fmt.date(sub.current_term_end)}, and won't be charged again.")

    @router.post("/billing/resume")
    @guarded
    async def resume(request: Request):
        session = session_of(request)
        await form_of(request, session)
        try:
            sub = live_sub(session.customer)
            sub = resume_subscription(ctx, sub.id)
        except CreditflowError as exc:
            return go(request, session, HOME, "error", plain(exc))
        with ctx.db.transaction(readonly=True) as db:
            customer = views.get_customer(db, session.customer)
        fmt = Formatter(customer.currency, customer.timezone)
        return go(request, session, HOME, "success",
                  f"Your subscription is back on. It renews on {fmt.date(sub.current_term_end)}.")

    # --- credit top-ups (T1) ---------------------------------------------------------------

    @router.get("/billing/credits/buy")
    @guarded
    async def topup_choose(request: Request):
        session = session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            view = views.billing_page(ctx, db, session.customer, invoice_limit=0, history_limit=0)
        return page(request, session, "billing/topup_choose.html", {
            "title": "Buy credits", "page": view, "selected": request.query_params.get("bundle"),
        }, customer=view.customer)

    @router.get("/billing/credits/buy/review")
    @guarded
    async def topup_review(request: Request, bundle: str = ""):
        session = session_of(request)
        bundle_def = ctx.catalog.bundle(bundle)
        with ctx.db.transaction(readonly=True) as db:
            view = views.billing_page(ctx, db, session.customer, invoice_limit=0, history_limit=0)
        if view.topup_blocked:
            return go(request, session, HOME, "error", view.topup_blocked)
        return page(request, session, "billing/topup_review.html", {
            "title": "Review your purchase", "bundle": bundle_def, "page": view,
            # The purchase's idempotency reference: a double submit buys once.
            "reference": f"web_{secrets.token_urlsafe(12)}",
        }, customer=view.customer)

    @router.post("/billing/credits/buy")
    @guarded
    async def topup_buy(request: Request):
        session = session_of(request)
        form = await form_of(request, session)
        try:
            topup = purchase_top_up(ctx, session.customer, bundle=form.get("bundle", ""),
                                    reference=form.get("reference") or None)
        except PaymentFailed as exc:
            return go(request, session, HOME, "error", plain(_with_decline_reason(exc, session.customer)))
        except CreditflowError as exc:
            return go(request, session, HOME, "error", plain(exc))
        with ctx.db.transaction(readonly=True) as db:
            customer = views.get_customer(db, session.customer)
        fmt = Formatter(customer.currency, customer.timezone)
        if topup.replayed:
            return go(request, session, HOME, "success",
                      f"That purchase already went through: {fmt.credits(topup.credits)} credits were added.")
        return go(request, session, HOME, "success",
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

    # --- invoices (P1) and the credit history ----------------------------------------------

    @router.get("/billing/invoices")
    @guarded
    async def invoices(request: Request, before: int | None = None):
        session = session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            rows = views.list_invoices(db, session.customer, limit=views.PAGE_SIZE + 1, before=before)
        more = len(rows) > views.PAGE_SIZE
        rows = rows[:views.PAGE_SIZE]
        return page(request, session, "billing/invoices.html", {
            "title": "Invoices", "invoices": rows, "titles": {i.id: views.invoice_title(i) for i in rows},
            "next_url": f"/billing/invoices?{urlencode({'before': rows[-1].number})}" if more else None,
            "first_page": before is None,
        })

    @router.get("/billing/invoices/{invoice_id}")
    @guarded
    async def invoice(request: Request, invoice_id: str):
        session = session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            inv = views.customer_invoice(db, session.customer, invoice_id)
            lines = list(inv.lines)
        return page(request, session, "billing/invoice.html", {
            "title": f"Invoice {inv.number:06d}", "invoice": inv, "lines": lines,
            "invoice_title": views.invoice_title(inv),
            "status_label": views.INVOICE_STATUS_LABELS.get(inv.status, inv.status),
        })

    @router.get("/billing/invoices/{invoice_id}/pdf")
    @guarded
    async def invoice_pdf(request: Request, invoice_id: str):
        session = session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            inv = views.customer_invoice(db, session.customer, invoice_id)
            customer = views.get_customer(db, session.customer)
            pdf = render_invoice_pdf(inv, customer, title=views.invoice_title(inv))
        return Response(pdf, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{invoice_filename(inv)}"',
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    @router.get("/billing/credits/history")
    @guarded
    async def history(request: Request, before: int | None = None):
        session = session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            lines = views.credit_history(db, session.customer, limit=views.PAGE_SIZE + 1, before=before)
        more = len(lines) > views.PAGE_SIZE
        lines = lines[:views.PAGE_SIZE]
        return page(request, session, "billing/history.html", {
            "title": "Credit history", "lines": lines, "first_page": before is None,
            "next_url": f"/billing/credits/history?{urlencode({'before': lines[-1].seq})}" if more else None,
        })

    @router.get("/billing/{rest:path}")
    async def not_found(rest: str):
        """Any other address under /billing: an HTML page, not the API's JSON."""
        return error_page(404, "There's nothing here, or it isn't yours to see.", home=HOME)

    return router


class _CsrfFailed(Exception):
    pass


def plan_currency(ctx) -> str:
    return ctx.catalog.currency

