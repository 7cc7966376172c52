"""Signing in and out, finding a customer, and the audit log."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request

from creditflow.support import service as support
from creditflow.web import views
from creditflow.web.console import queries
from creditflow.web.console.pages import HOME, ConsolePages
from creditflow.web.rendering import error_page
from creditflow.web.security import csrf_ok


def add_routes(router: APIRouter, pages: ConsolePages) -> None:
    ctx = pages.ctx

    # --- signing in and out ----------------------------------------------------------------

    @router.get("/console/login")
    async def login_form(request: Request):
        pages.web.ensure_bootstrap_users()
        session = pages.codec.load(request) or pages.codec.start()
        response = pages.render(request, session, None, "console/login.html", {"title": "Sign in", "username": ""})
        pages.codec.save(response, request, session)  # the sign-in form's CSRF token lives in this cookie
        return response

    @router.post("/console/login")
    async def login(request: Request):
        pages.web.ensure_bootstrap_users()
        session = pages.codec.load(request)
        form = await request.form()
        if not csrf_ok(session, form.get("csrf_token")):
            return error_page(403, "This form has expired. Please reload the sign-in page and try again.",
                              home="/console/login", home_label="Sign in")
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        if pages.web.login_throttle.blocked(username):
            staff, text = None, "Too many failed attempts for this username. Please wait a few minutes and try again."
        else:
            with ctx.db.transaction(readonly=True) as db:
                staff = support.authenticate_staff(db, username, password)
            text = "Wrong username or password."
        if staff is None:
            pages.web.login_throttle.failed(username)
            session.flash = {"kind": "error", "text": text}
            return pages.render(request, session, None, "console/login.html",
                                {"title": "Sign in", "username": username}, status=401)
        pages.web.login_throttle.succeeded(username)
        # A new session (and CSRF token) on sign-in: nothing from before it carries over.
        fresh = pages.codec.start()
        fresh.user = staff.id
        return pages.go(request, fresh, HOME)

    @router.post("/console/logout")
    @pages.guarded
    async def logout(request: Request):
        session, _ = pages.signed_in(request)
        await pages.form_of(request, session)
        response = pages.web.redirect(request, pages.codec, None, "/console/login")
        pages.codec.clear(response)
        return response

    # --- finding a customer ----------------------------------------------------------------

    @router.get("/console")
    @pages.guarded
    async def home(request: Request, q: str = ""):
        session, staff = pages.signed_in(request)
        with ctx.db.transaction(readonly=True) as db:
            found = queries.find_customers(db, q) if q else []
            recent = support.list_audit(db, limit=10)
        return pages.render(request, session, staff, "console/home.html",
                    {"title": "Customers", "q": q, "found": found, "recent": recent, "nav": "customers"})

    # --- the audit log ---------------------------------------------------------------------

    @router.get("/console/audit")
    @pages.guarded
    async def audit(request: Request, customer: str = "", before: int | None = None):
        session, staff = pages.signed_in(request)
        with ctx.db.transaction(readonly=True) as db:
            records = support.list_audit(db, customer_id=customer or None, before=before, limit=views.PAGE_SIZE + 1)
        more = len(records) > views.PAGE_SIZE
        records = records[:views.PAGE_SIZE]
        next_url = None
        if more:
            query = {"before": records[-1].seq, **({"customer": customer} if customer else {})}
            next_url = f"/console/audit?{urlencode(query)}"
        return pages.render(request, session, staff, "console/audit.html", {
            "title": "Audit log", "records": records, "customer": customer, "next_url": next_url, "nav": "audit"})
