"""What every billing-page handler shares: the visit of the one customer a session is bound to
(`Visitor`), the CSRF-checked form of a POST (`PostedForm`), rendering with the customer's
formats, and post/redirect/get with a one-time message.

Both dependencies run on the event loop and do no database work (the session is a signed
cookie); the handlers that use them are plain `def` functions, run in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import Response

from creditflow.kit.errors import Conflict, CreditflowError
from creditflow.web import views
from creditflow.web.site import Web, current_web
from creditflow.web.messages import plain
from creditflow.web.rendering import Formatter, PageRefused, error_page, render
from creditflow.web.security import BrowserSession, posted_form_of

HOME = "/billing"


class SessionEnded(PageRefused):
    """No valid billing session: the page must be opened again through the host app."""

    def __init__(self):
        super().__init__(error_page(401, "Your billing session has ended. Please open the billing page again "
                                         "from the app."))


class CsrfFailed(PageRefused):
    """A POST without the session's CSRF token."""

    def __init__(self):
        super().__init__(error_page(403, "This form has expired. Please go back, reload the page and try again. "
                                         "Nothing was changed.", home=HOME))


class Visit:
    """One request to the billing page, from the browser of the customer its session is bound to."""

    def __init__(self, web: Web, request: Request, session: BrowserSession):
        self.web, self.request, self.session = web, request, session
        self.ctx = web.ctx
        self.codec = web.billing_sessions

    @property
    def customer_id(self) -> str:
        return self.session.customer

    def render(self, template: str, data: dict, *, status: int = 200, customer=None) -> Response:
        flash = self.session.take_flash()
        if customer is None:
            with self.ctx.db.transaction(readonly=True) as db:
                customer = views.get_customer(db, self.customer_id)
        response = render(template, {
            "area": "billing", "csrf": self.session.csrf, "flash": flash, "return_url": self.session.return_url,
            "customer": customer, "fmt": Formatter(customer.currency, customer.timezone),
            "here": self.here, **data,
        }, status=status)
        if flash is not None:  # shown once: write the session back without it
            self.codec.save(response, self.request, self.session)
        return response

    def go(self, url: str, kind: str | None = None, text: str | None = None) -> Response:
        """303 to `url` (after a POST), with a one-time message of `kind` (success, error) for it."""
        return self.web.redirect(self.request, self.codec, self.session, url, flash=(kind, text) if kind else None)

    def done(self, text: str) -> Response:
        """Back to the page, saying what was done."""
        return self.go(HOME, "success", text)

    @property
    def here(self) -> str:
        """This page's address (path and query): where adding a card comes back to."""
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def failed(self, exc: CreditflowError) -> Response:
        """Back to the page, saying in plain words why the action failed; a payment that needs
        the cardholder's authentication goes on to it instead."""
        if exc.code == "authentication_required" and exc.extra.get("invoice"):
            return self.go(f"/billing/invoices/{exc.extra['invoice']}/pay")
        return self.go(HOME, "error", plain(exc))

    def live_sub(self):
        with self.ctx.db.transaction(readonly=True) as db:
            sub = views.live_subscription(db, self.customer_id)
        if sub is None:
            raise Conflict("You don't have a subscription.", code="no_subscription")
        return sub

    def formatter(self) -> Formatter:
        """The customer's formats (currency, time zone)."""
        with self.ctx.db.transaction(readonly=True) as db:
            customer = views.get_customer(db, self.customer_id)
        return Formatter(customer.currency, customer.timezone)


async def billing_visit(request: Request, web: Annotated[Web, Depends(current_web)]) -> Visit:
    """The visit of the session's customer; an ended session answers with a page saying so."""
    session = web.billing_sessions.load(request)
    if session is None or not session.customer:
        raise SessionEnded()
    if session.member is not None and not _member_may_open(request.url.path):
        raise PageRefused(error_page(403, "This page opened for a team member shows the team's credits and your own "
                                          "usage; billing is the team owner's.", home=HOME))
    return Visit(web, request, session)


def _member_may_open(path: str) -> bool:
    """A team member's session opens the page itself, and (for an admin) the team's forms."""
    return path == HOME or path.startswith(HOME + "/team/")


posted_form = posted_form_of(billing_visit, CsrfFailed)


Visitor = Annotated[Visit, Depends(billing_visit)]
PostedForm = Annotated[dict[str, str], Depends(posted_form)]
CSRF_CHECKED = [Depends(posted_form)]  # `dependencies=` of a POST whose form has nothing else
