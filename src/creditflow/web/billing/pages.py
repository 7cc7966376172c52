"""What every billing-page handler shares: the session bound to one customer, CSRF-checked
forms, rendering with the customer's formats, and post/redirect/get with a one-time message."""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response

from creditflow.kit.errors import Conflict
from creditflow.web import views
from creditflow.web.app import Web
from creditflow.web.rendering import Formatter, error_page, render
from creditflow.web.security import BrowserSession, csrf_ok

HOME = "/billing"


class SessionEnded(Exception):
    """No valid billing session: the page must be opened again through the host app."""


class CsrfFailed(Exception):
    """A POST without the session's CSRF token."""


class BillingPages:
    def __init__(self, web: Web):
        self.web = web
        self.ctx = web.ctx
        self.codec = web.billing_sessions

    def session_of(self, request: Request) -> BrowserSession:
        session = self.codec.load(request)
        if session is None or not session.customer:
            raise SessionEnded()
        return session

    async def form_of(self, request: Request, session: BrowserSession) -> dict:
        form = await request.form()
        if not csrf_ok(session, form.get("csrf_token")):
            raise CsrfFailed()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    def render(self, request: Request, session: BrowserSession, template: str, data: dict, *, status: int = 200,
               customer=None) -> Response:
        flash = session.take_flash()
        if customer is None:
            with self.ctx.db.transaction(readonly=True) as db:
                customer = views.get_customer(db, session.customer)
        response = render(template, {
            "area": "billing", "csrf": session.csrf, "flash": flash, "return_url": session.return_url,
            "customer": customer, "fmt": Formatter(customer.currency, customer.timezone), **data,
        }, status=status)
        if flash is not None:  # shown once: write the session back without it
            self.codec.save(response, request, session)
        return response

    def go(self, request: Request, session: BrowserSession, url: str, kind: str | None = None,
           text: str | None = None) -> Response:
        return self.web.redirect(request, self.codec, session, url, flash=(kind, text) if kind else None)

    def guarded(self, handler):
        """Turn an ended session or a bad CSRF token into a page that says so."""
        @functools.wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            try:
                return await handler(request, *args, **kwargs)
            except SessionEnded:
                return error_page(401, "Your billing session has ended. Please open the billing page again "
                                       "from the app.")
            except CsrfFailed:
                return error_page(403, "This form has expired. Please go back, reload the page and try again. "
                                       "Nothing was changed.", home=HOME)
        return wrapper

    def live_sub(self, customer_id: str):
        with self.ctx.db.transaction(readonly=True) as db:
            sub = views.live_subscription(db, customer_id)
        if sub is None:
            raise Conflict("You don't have a subscription.", code="no_subscription")
        return sub

    def customer_formatter(self, customer_id: str) -> Formatter:
        with self.ctx.db.transaction(readonly=True) as db:
            customer = views.get_customer(db, customer_id)
        return Formatter(customer.currency, customer.timezone)
