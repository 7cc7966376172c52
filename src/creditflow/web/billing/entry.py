"""Entering the billing page through a portal link, and the page itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import FileResponse

from creditflow.portal.service import redeem_portal_token
from creditflow.purchase.open_invoice import payable_invoices
from creditflow.payment.attempts import last_failure
from creditflow.kit.errors import NotFound
from creditflow.web import views
from creditflow.web.site import Web, current_web
from creditflow.web.billing import cards, details, team
from creditflow.web.billing.pages import HOME, Visit, Visitor
from creditflow.web.rendering import STATIC_DIR, HTMLErrorRoute, error_page

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
for _part in (cards, details, team):  # the card on file and paying (3-D Secure), the billing details
    router.include_router(_part.router)


# --- entering ----------------------------------------------------------------------------------


@router.get("/billing/session/{token}")
def open_link(request: Request, token: str, web: Annotated[Web, Depends(current_web)]):
    """Use a portal link: once, within 5 minutes. Starts a session bound to its customer."""
    ctx = web.ctx
    try:
        with ctx.db.transaction() as db:
            portal = redeem_portal_token(db, token, secret_key=web.secret_key, now=ctx.clock.now())
            customer_id, return_url, member = portal.customer_id, portal.return_url, portal.member_id
    except NotFound:
        return error_page(404, "This link has expired or has already been used. Links to the billing page "
                               "work once, for 5 minutes; please open the billing page again from the app.")
    session = web.billing_sessions.start()
    session.customer, session.return_url, session.member = customer_id, return_url, member
    return Visit(web, request, session).go(HOME)


@router.get("/billing/static/creditflow.css")
async def stylesheet():
    return FileResponse(STATIC_DIR / "creditflow.css", media_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/billing/static/card.js")
async def card_script():
    """Stripe.js glue for the card and authentication pages (no inline script: the CSP forbids it)."""
    return FileResponse(STATIC_DIR / "card.js", media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=3600"})


# --- the page ----------------------------------------------------------------------------------


@router.get("/billing")
def overview(visit: Visitor):
    if visit.session.member is not None:  # a team member's page: the pool and their own usage
        return team.member_page(visit)
    with visit.ctx.db.transaction(readonly=True) as db:
        view = views.billing_page(visit.ctx, db, visit.customer_id)
        to_pay = [(invoice, waiting is not None, views.invoice_title(invoice))
                  for invoice, waiting in payable_invoices(db, visit.customer_id)]
        failure = last_failure(db, visit.customer_id) if view.status == "past_due" else None
        team_view = team.team_section(visit.ctx, db, visit.customer_id)
    return visit.render("billing/overview.html", {
        "page": view, "title": "Billing and subscription", "to_pay": to_pay,
        "needs_authentication": getattr(failure, "failure_code", None) == "authentication_required",
        "team": team_view,
    }, customer=view.customer)
