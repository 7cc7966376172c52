"""Signing in and out, changing one's password, finding a customer, and the audit log."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from starlette.requests import Request

from creditflow.kit.errors import CreditflowError, InvalidRequest
from creditflow.support import service as support
from creditflow.support.sessions import end_console_session, start_console_session
from creditflow.web import views
from creditflow.web.site import Web, current_web
from creditflow.web.console import queries
from creditflow.web.console.pages import CSRF_CHECKED, HOME, LOGIN, PostedForm, SignedIn, StaffVisit, sentence
from creditflow.web.rendering import HTMLErrorRoute, error_page
from creditflow.web.security import BrowserSession, csrf_ok, read_form, session_expiry, wall_now

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
    return StaffVisit(web, request, _signed_in_session(web, staff.id), staff).go(HOME)


def _signed_in_session(web: Web, user_id: str) -> BrowserSession:
    """A new session (and CSRF token) for `user_id`, held on the server too: nothing from before
    it carries over, and it ends when the server lets it go."""
    fresh = web.console_sessions.start()
    fresh.user = user_id
    with web.ctx.db.transaction() as db:
        fresh.sid = start_console_session(db, user_id, now=wall_now(), expires_at=session_expiry(fresh))
    return fresh


@router.post("/console/logout", dependencies=CSRF_CHECKED)
def logout(visit: SignedIn):
    """Ends the session on the server, so that a copy of the cookie no longer signs anyone in."""
    with visit.ctx.db.transaction() as db:
        end_console_session(db, visit.session.sid)
    response = visit.web.redirect(visit.request, visit.codec, None, LOGIN)
    visit.codec.clear(response)
    return response


# --- changing one's password -------------------------------------------------------------------


@router.get("/console/password")
def password_form(visit: SignedIn):
    return visit.render("console/password.html", {"title": "Change password", "nav": "password"})


@router.post("/console/password")
def change_password(visit: SignedIn, form: PostedForm):
    """Every session of the user ends, this one included; this browser gets a new one."""
    new = form.get("new_password", "")
    try:
        if new != form.get("confirm_password", ""):
            raise InvalidRequest("the new password and its confirmation differ", param="confirm_password")
        with visit.ctx.db.transaction() as db:
            support.change_password(db, visit.staff.id, current=form.get("current_password", ""), new=new)
    except CreditflowError as exc:
        visit.session.flash = {"kind": "error", "text": sentence(exc)}
        return visit.render("console/password.html", {"title": "Change password", "nav": "password"}, status=422)
    fresh = _signed_in_session(visit.web, visit.staff.id)
    return StaffVisit(visit.web, visit.request, fresh, visit.staff).go(
        HOME, "success", "Your password was changed. Every other session of yours was signed out.")


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
