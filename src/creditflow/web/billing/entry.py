"""Entering the billing page through a portal link, and the page itself."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse

from creditflow.kit.errors import NotFound
from creditflow.portal.service import redeem_portal_token
from creditflow.web import views
from creditflow.web.billing.pages import HOME, BillingPages
from creditflow.web.rendering import STATIC_DIR, error_page


def add_routes(router: APIRouter, pages: BillingPages) -> None:
    ctx = pages.ctx

    # --- entering --------------------------------------------------------------------------

    @router.get("/billing/session/{token}")
    async def open_link(request: Request, token: str):
        """Use a portal link: once, within 5 minutes. Starts a session bound to its customer."""
        try:
            with ctx.db.transaction() as db:
                portal = redeem_portal_token(db, token, secret_key=pages.web.secret_key, now=ctx.clock.now())
                customer_id, return_url = portal.customer_id, portal.return_url
        except NotFound:
            return error_page(404, "This link has expired or has already been used. Links to the billing page "
                                   "work once, for 5 minutes; please open the billing page again from the app.")
        session = pages.codec.start()
        session.customer, session.return_url = customer_id, return_url
        return pages.go(request, session, HOME)

    @router.get("/billing/static/creditflow.css")
    async def stylesheet():
        return FileResponse(STATIC_DIR / "creditflow.css", media_type="text/css",
                            headers={"Cache-Control": "public, max-age=3600"})

    # --- the page --------------------------------------------------------------------------

    @router.get("/billing")
    @pages.guarded
    async def overview(request: Request):
        session = pages.session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            view = views.billing_page(ctx, db, session.customer)
        return pages.render(request, session, "billing/overview.html",
                            {"page": view, "title": "Billing and subscription"}, customer=view.customer)
