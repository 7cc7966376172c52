"""The support console: sign-in with roles, find a customer, and the support actions (SPEC D2,
M1, X4, promo grants), each with a reason and an audit record (who, when, what, why).

Roles: `support` may use every customer action; `admin` may also manage console users.
"""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from creditflow.credits.promo import grant_promo_credits
from creditflow.kit.errors import CreditflowError, Forbidden, InvalidRequest
from creditflow.refund.service import SUBSCRIPTION_PURPOSES, create_refund, eligibility, refundable_amount
from creditflow.subscription.change import change_subscription
from creditflow.subscription.service import cancel_subscription
from creditflow.support import service as support
from creditflow.web import views
from creditflow.web.app import Web
from creditflow.web.rendering import Formatter, HTMLErrorRoute, error_page, render
from creditflow.web.security import BrowserSession, csrf_ok

HOME = "/console"
UNUSED_VALUE_LABELS = {
    "balance": "Account balance: the unused value pays the customer's next charges",
    "refund": "Refund to the payment method",
    "none": "Nothing: the unused value is forfeited",
}


class _SignedOut(Exception):
    pass


class _CsrfFailed(Exception):
    pass


def console_router(web: Web) -> APIRouter:
    router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
    ctx = web.ctx
    codec = web.console_sessions

    # --- plumbing ----------------------------------------------------------------------------

    def signed_in(request: Request, *, admin: bool = False) -> tuple[BrowserSession, support.Staff]:
        web.ensure_bootstrap_users()
        session = codec.load(request)
        if session is None or not session.user:
            raise _SignedOut()
        with ctx.db.transaction(readonly=True) as db:
            staff = support.get_staff(db, session.user)
        if staff is None:
            raise _SignedOut()
        if admin and not staff.is_admin:
            raise Forbidden("Only an admin can manage console users.")
        return session, staff

    async def form_of(request: Request, session: BrowserSession) -> dict:
        form = await request.form()
        if not csrf_ok(session, form.get("csrf_token")):
            raise _CsrfFailed()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    def page(request: Request, session: BrowserSession, staff: support.Staff | None, template: str, data: dict,
             *, status: int = 200) -> Response:
        flash = session.take_flash()
        response = render(template, {"area": "console", "csrf": session.csrf, "flash": flash, "staff": staff,
                                     "fmt": Formatter(ctx.catalog.currency), **data}, status=status)
        if flash is not None:
            codec.save(response, request, session)
        return response

    def go(request: Request, session: BrowserSession, url: str, kind: str | None = None,
           text: str | None = None) -> Response:
        return web.redirect(request, codec, session, url, flash=(kind, text) if kind else None)

    def guarded(handler):
        @functools.wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            try:
                return await handler(request, *args, **kwargs)
            except _SignedOut:
                return web.redirect(request, codec, None, "/console/login")
            except _CsrfFailed:
                return error_page(403, "This form has expired. Go back, reload the page and try again. "
                                       "Nothing was changed.", home=HOME)
        return wrapper

    def customer_url(customer_id: str) -> str:
        return f"/console/customers/{customer_id}"

    # --- signing in and out ----------------------------------------------------------------

    @router.get("/console/login")
    async def login_form(request: Request):
        web.ensure_bootstrap_users()
        session = codec.load(request) or codec.start()
        response = page(request, session, None, "console/login.html", {"title": "Sign in", "username": ""})
        codec.save(response, request, session)  # the sign-in form's CSRF token lives in this cookie
        return response

    @router.post("/console/login")
    async def login(request: Request):
        web.ensure_bootstrap_users()
        session = codec.load(request)
        form = await request.form()
        if not csrf_ok(session, form.get("csrf_token")):
            return error_page(403, "This form has expired. Please reload the sign-in page and try again.",
                              home="/console/login", home_label="Sign in")
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        if web.login_throttle.blocked(username):
            staff, text = None, "Too many failed attempts for this username. Please wait a few minutes and try again."
        else:
            with ctx.db.transaction(readonly=True) as db:
                staff = support.authenticate_staff(db, username, password)
            text = "Wrong username or password."
        if staff is None:
            web.login_throttle.failed(username)
            session.flash = {"kind": "error", "text": text}
            return page(request, session, None, "console/login.html", {"title": "Sign in", "username": username},
                        status=401)
        web.login_throttle.succeeded(username)
        # A new session (and CSRF token) on sign-in: nothing from before it carries over.
        fresh = codec.start()
        fresh.user = staff.id
        return go(request, fresh, HOME)

    @router.post("/console/logout")
    @guarded
    async def logout(request: Request):
        session, _ = signed_in(request)
        await form_of(request, session)
        response = web.redirect(request, codec, None, "/console/login")
        codec.clear(response)
        return response

    # --- finding a customer ----------------------------------------------------------------

    @router.get("/console")
    @guarded
    async def home(request: Request, q: str = ""):
        session, staff = signed_in(request)
        with ctx.db.transaction(readonly=True) as db:
            found = views.find_customers(db, q) if q else []
            recent = support.list_audit(db, limit=10)
        return page(request, session, staff, "console/home.html",
                    {"title": "Customers", "q": q, "found": found, "recent": recent, "nav": "customers"})

    @router.get("/console/customers/{customer_id}")
    @guarded
    async def customer(request: Request, customer_id: str):
        session, staff = signed_in(request)
        with ctx.db.transaction(readonly=True) as db:
            view = views.billing_page(ctx, db, customer_id, invoice_limit=50, history_limit=10)
            audit = support.list_audit(db, customer_id=customer_id, limit=20)
        sub = view.sub
        return page(request, session, staff, "console/customer.html", {
            "title": view.customer.email, "page": view, "sub": sub, "audit": audit, "nav": "customers",
            "customer_fmt": Formatter(view.customer.currency, view.customer.timezone),
            "titles": {inv.id: views.invoice_title(inv) for inv in view.invoices},
            "downgrades": views.downgrade_options(ctx.catalog, sub),
            "unused": views.unused_value(sub, view.now), "unused_labels": UNUSED_VALUE_LABELS,
            "promo_reference": f"console_{secrets.token_urlsafe(12)}",
        })

    # --- actions (each with a reason and an audit record) ----------------------------------

    def audited(staff, *, action: str, summary: str, reason: str | None, customer_id: str, work, details=None,
                describe=None):
        return support.run_audited(ctx, staff, action=action, summary=summary, reason=reason,
                                   customer_id=customer_id, work=work, details=details, describe=describe)

    @router.post("/console/customers/{customer_id}/downgrade")
    @guarded
    async def downgrade_now(request: Request, customer_id: str):
        """D2: an immediate downgrade, with support's choice for the unused value."""
        session, staff = signed_in(request)
        form = await form_of(request, session)
        here = customer_url(customer_id)
        try:
            with ctx.db.transaction(readonly=True) as db:
                sub = views.live_subscription(db, views.get_customer(db, customer_id).id)
            if sub is None:
                raise InvalidRequest("the customer has no subscription to downgrade")
            plan, _, term = form.get("target", "").partition(":")
            target = ctx.catalog.plan(plan)
            term = ctx.catalog.term(term).value
            choice = form.get("unused_value") or "balance"
            if choice not in UNUSED_VALUE_LABELS:
                raise InvalidRequest("choose what happens to the unused value", param="unused_value")
            current = ctx.catalog.plan(sub.plan)
            summary = (f"Immediate downgrade from {current.name} ({sub.term}) to {target.name} ({term}); "
                       f"unused value: {choice}")
            audited(staff, action="subscription.downgrade_now", summary=summary, reason=form.get("reason"),
                    customer_id=customer_id,
                    details={"subscription": sub.id, "from": {"plan": sub.plan, "term": sub.term},
                             "to": {"plan": target.code, "term": term}, "unused_value": choice},
                    work=lambda: change_subscription(ctx, sub.id, plan=target.code, term=term, timing="immediate",
                                                     support=True, unused_value=choice,
                                                     reason=support.check_reason(form.get("reason"))),
                    describe=lambda result: f"now on {target.name} ({term})")
        except CreditflowError as exc:
            return go(request, session, here, "error", _sentence(exc))
        return go(request, session, here, "success", f"Downgraded to {target.name} ({term}) now.")

    @router.post("/console/customers/{customer_id}/cancel-now")
    @guarded
    async def cancel_now(request: Request, customer_id: str):
        """X4: end the subscription at once, with a refund of the unused time or none."""
        session, staff = signed_in(request)
        form = await form_of(request, session)
        here = customer_url(customer_id)
        try:
            with ctx.db.transaction(readonly=True) as db:
                sub = views.live_subscription(db, views.get_customer(db, customer_id).id)
            if sub is None:
                raise InvalidRequest("the customer has no subscription to end")
            refund = form.get("refund") or "none"
            reason = support.check_reason(form.get("reason"))
            audited(staff, action="subscription.end_now",
                    summary=f"Ended the {ctx.catalog.plan(sub.plan).name} subscription now; refund: {refund}",
                    reason=reason, customer_id=customer_id, details={"subscription": sub.id, "refund": refund},
                    work=lambda: cancel_subscription(ctx, sub.id, at_period_end=False, refund=refund, support=True,
                                                     reason=reason, actor=staff.username))
        except CreditflowError as exc:
            return go(request, session, here, "error", _sentence(exc))
        return go(request, session, here, "success", "The subscription has ended; the customer is on Free.")

    @router.get("/console/customers/{customer_id}/invoices/{invoice_id}/refund")
    @guarded
    async def refund_form(request: Request, customer_id: str, invoice_id: str):
        session, staff = signed_in(request)
        with ctx.db.transaction(readonly=True) as db:
            invoice = views.customer_invoice(db, customer_id, invoice_id)
            customer = views.get_customer(db, customer_id)
            lines = list(invoice.lines)
        verdict = eligibility(ctx, invoice.id)
        return page(request, session, staff, "console/refund.html", {
            "title": f"Refund invoice {invoice.number:06d}", "customer": customer, "invoice": invoice,
            "lines": lines, "eligibility": verdict, "refundable": refundable_amount(invoice),
            "invoice_title": views.invoice_title(invoice), "nav": "customers",
            "ends_subscription": invoice.purpose in SUBSCRIPTION_PURPOSES,
        })

    @router.post("/console/customers/{customer_id}/invoices/{invoice_id}/refund")
    @guarded
    async def refund(request: Request, customer_id: str, invoice_id: str):
        session, staff = signed_in(request)
        form = await form_of(request, session)
        here = f"/console/customers/{customer_id}/invoices/{invoice_id}/refund"
        try:
            with ctx.db.transaction(readonly=True) as db:
                invoice = views.customer_invoice(db, customer_id, invoice_id)
                number, currency = invoice.number, invoice.currency
            amount = _minor_units(form.get("amount", ""))
            verdict = eligibility(ctx, invoice_id)
            fmt = Formatter(currency)
            what = fmt.money(amount) if amount is not None else "the full amount"
            result = audited(
                staff, action="invoice.refund", summary=f"Refund of {what} on invoice {number:06d}",
                reason=form.get("reason"), customer_id=customer_id,
                details={"invoice": invoice_id, "amount": amount, "policy_eligible": verdict.eligible,
                         "policy": verdict.reason},
                work=lambda: create_refund(ctx, invoice_id, reason=support.check_reason(form.get("reason")),
                                           amount=amount, actor=staff.username),
                describe=lambda r: f"refund {r.id}: {fmt.money(r.amount)} {r.status}")
        except CreditflowError as exc:
            return go(request, session, here, "error", _sentence(exc))
        return go(request, session, customer_url(customer_id), "success",
                  f"Refunded {Formatter(currency).money(result.amount)} on invoice {number:06d}.")

    @router.post("/console/customers/{customer_id}/promo")
    @guarded
    async def promo(request: Request, customer_id: str):
        session, staff = signed_in(request)
        form = await form_of(request, session)
        here = customer_url(customer_id)
        try:
            with ctx.db.transaction(readonly=True) as db:
                views.get_customer(db, customer_id)
                now = ctx.now_for(db, customer_id)
            days = (form.get("expires_in_days") or "").strip()
            expires_at = None
            if days:
                if not days.isdigit() or not 1 <= int(days) <= 3650:
                    raise InvalidRequest("expiry must be a whole number of days between 1 and 3650",
                                         param="expires_in_days")
                expires_at = now + timedelta(days=int(days))
            amount = (form.get("amount") or "").strip()
            reason = support.check_reason(form.get("reason"))
            lot = audited(staff, action="credits.promo_grant",
                          summary=f"Granted {amount} promotional credits"
                                  + (f", expiring in {days} days" if days else ", never expiring"),
                          reason=reason, customer_id=customer_id, details={"amount": amount, "expires_in_days": days},
                          work=lambda: grant_promo_credits(ctx, customer_id, amount=amount, reason=reason,
                                                           expires_at=expires_at, actor=staff.username,
                                                           reference=form.get("reference") or None),
                          describe=lambda lot: f"lot {lot.id}")
        except CreditflowError as exc:
            return go(request, session, here, "error", _sentence(exc))
        fmt = Formatter(ctx.catalog.currency)
        return go(request, session, here, "success", f"Granted {fmt.credits(lot.granted)} promotional credits.")

    # --- the audit log ---------------------------------------------------------------------

    @router.get("/console/audit")
    @guarded
    async def audit(request: Request, customer: str = "", before: int | None = None):
        session, staff = signed_in(request)
        with ctx.db.transaction(readonly=True) as db:
            records = support.list_audit(db, customer_id=customer or None, before=before, limit=views.PAGE_SIZE + 1)
        more = len(records) > views.PAGE_SIZE
        records = records[:views.PAGE_SIZE]
        next_url = None
        if more:
            query = {"before": records[-1].seq, **({"customer": customer} if customer else {})}
            next_url = f"/console/audit?{urlencode(query)}"
        return page(request, session, staff, "console/audit.html", {
            "title": "Audit log", "records": records, "customer": customer, "next_url": next_url, "nav": "audit"})

    # --- console users (admin) -------------------------------------------------------------

    @router.get("/console/users")
    @guarded
    async def users(request: Request):
        session, staff = signed_in(request, admin=True)
        with ctx.db.transaction(readonly=True) as db:
            people = support.list_support_users(db)
        return page(request, session, staff, "console/users.html", {"title": "Team", "people": people, "nav": "users"})

    @router.post("/console/users")
    @guarded
    async def add_user(request: Request):
        session, staff = signed_in(request, admin=True)
        form = await form_of(request, session)
        username, role = form.get("username", ""), form.get("role", "support")
        try:
            def create():
                with ctx.db.transaction() as db:
                    return support.create_support_user(db, username=username, password=form.get("password", ""),
                                                       role=role, now=ctx.clock.now())
            audited(staff, action="console.user_create", summary=f"Added console user {username} ({role})",
                    reason=form.get("reason"), customer_id=None, work=create)
        except CreditflowError as exc:
            return go(request, session, "/console/users", "error", _sentence(exc))
        return go(request, session, "/console/users", "success", f"Added {username.strip()} as {role}.")

    @router.post("/console/users/{user_id}/disable")
    @guarded
    async def disable_user(request: Request, user_id: str):
        session, staff = signed_in(request, admin=True)
        form = await form_of(request, session)
        try:
            if user_id == staff.id:
                raise InvalidRequest("you can't disable your own account")

            def disable():
                with ctx.db.transaction() as db:
                    return support.set_user_disabled(db, user_id, disabled=True, now=ctx.clock.now()).username
            audited(staff, action="console.user_disable", summary=f"Disabled console user {user_id}",
                    reason=form.get("reason"), customer_id=None, work=disable)
        except CreditflowError as exc:
            return go(request, session, "/console/users", "error", _sentence(exc))
        return go(request, session, "/console/users", "success", "The user can no longer sign in.")

    @router.get("/console/{rest:path}")
    async def not_found(rest: str):
        return error_page(404, "There's nothing at this address.", home=HOME)

    return router


def _sentence(exc: CreditflowError) -> str:
    message = exc.message.strip()
    message = message[:1].upper() + message[1:]
    return message if message.endswith(".") else message + "."


def _minor_units(text: str) -> int | None:
    """"12.50" -> 1250; empty -> None (the full amount)."""
    text = (text or "").strip().lstrip("$€£").replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidRequest("the amount must be a number like 12.50", param="amount") from None
    if not value.is_finite() or value <= 0 or value != value.quantize(Decimal("0.01")) or value > 10**9:
        raise InvalidRequest("the amount must be a positive number with at most 2 decimals", param="amount")
    return int(value * 100)

