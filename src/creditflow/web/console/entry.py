"""Signing in and out, finding a customer, and the audit log."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.requests import Request

from creditflow.support import service as support
from creditflow.web import views
from creditflow.web.site import Web, current_web
from creditflow.web.console import queries
from creditflow.web.console.pages import CSRF_CHECKED, HOME, LOGIN, SignedIn, StaffVisit
from creditflow.web.rendering import HTMLErrorRoute, error_page
from creditflow.web.security import csrf_ok, read_form

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)


# --- signing in and out ------------------------------------------------------------------------


@router.get("/console/login")
def login_form(request: Request, web: Annotated[Web, Depends(current_web)]):
    web.ensure_bootstrap_users()
    session = web.console_sessions.load(request) or web.console_sessions.start()
    response = StaffVisit(web, request, session, None).render("console/login.html",
                                                              {"title": "Sign in", "username": ""})
    web.console_sessions.save(response, request, session)  # the sign-in form's CSRF token lives in this cookie
    return response


@router.post("/console/login")
def login(request: Request, web: Annotated[Web, Depends(current_web)],
          form: Annotated[dict[str, str], Depends(read_form)]):
    web.ensure_bootstrap_users()
    session = web.console_sessions.load(request)
    if not csrf_ok(session, form.get("csrf_token")):
        return error_page(403, "This form has expired. Please reload the sign-in page and try again.",
                          home=LOGIN, home_label="Sign in")
    username, password = form.get("username", ""), form.get("password", "")
    if web.login_throttle.blocked(username):
        staff, text = None, "Too many failed attempts for this username. Please wait a few minutes and try again."
    else:
        with web.ctx.db.transaction(readonly=True) as db:
            staff = support.authenticate_staff(db, username, password)
        text = "Wrong username or password."
    if staff is None:
        web.login_throttle.failed(username)
        session.flash = {"kind": "error", "text": text}
        return StaffVisit(web, request, session, None).render("console/login.html",
                                                              {"title": "Sign in", "username": username}, status=401)
    web.login_throttle.succeeded(username)
    # A new session (and CSRF token) on sign-in: nothing from before it carries over.
    fresh = web.console_sessions.start()
    fresh.user = staff.id
    return StaffVisit(web, request, fresh, staff).go(HOME)


@router.post("/console/logout", dependencies=CSRF_CHECKED)
def logout(visit: SignedIn):
    response = visit.web.redirect(visit.request, visit.codec, None, LOGIN)
    visit.codec.clear(response)
    return response


# --- finding a customer ------------------------------------------------------------------------


@router.get("/console")
def home(visit: SignedIn, q: str = ""):
    with visit.ctx.db.transaction(readonly=True) as db:
        found = queries.find_customers(db, q) if q else []
        recent = support.list_audit(db, limit=10)
        customers = queries.recent_customers(db, limit=10)
    return visit.render("console/home.html",
                        {"title": "Customers", "q": q, "found": found, "recent": recent, "nav": "customers",
                         "recent_customers": customers})


# --- the audit log -----------------------------------------------------------------------------


@router.get("/console/audit")
def audit(visit: SignedIn, customer: str = "", before: int | None = None):
    with visit.ctx.db.transaction(readonly=True) as db:
        records = support.list_audit(db, customer_id=customer or None, before=before, limit=views.PAGE_SIZE + 1)
    more = len(records) > views.PAGE_SIZE
    records = records[:views.PAGE_SIZE]
    next_url = None
    if more:
        query = {"before": records[-1].seq, **({"customer": customer} if customer else {})}
        next_url = f"/console/audit?{urlencode(query)}"
    return visit.render("console/audit.html", {
        "title": "Audit log", "records": records, "customer": customer, "next_url": next_url, "nav": "audit"})
