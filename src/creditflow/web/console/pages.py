"""What every console handler shares: the signed-in user and their role (`SignedIn`,
`AdminSignedIn`), the CSRF-checked form of a POST (`PostedForm`), rendering, post/redirect/get
with a one-time message, and audited actions.

Finding the signed-in user reads the database, so that dependency is a plain `def` (run in the
thread pool, like the handlers); reading the form is the one thing awaited on the event loop.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from creditflow.support import service as support
from creditflow.support.sessions import console_session_valid
from creditflow.kit.errors import CreditflowError, Forbidden, InvalidRequest
from creditflow.web.site import Web, current_web
from creditflow.web.rendering import Formatter, PageRefused, error_page, render
from creditflow.web.security import BrowserSession, posted_form_of, wall_now

HOME = "/console"
LOGIN = "/console/login"


class SignedOut(PageRefused):
    """No console session, or its user was disabled: off to the sign-in page."""

    def __init__(self):
        super().__init__(RedirectResponse(LOGIN, status_code=303))


class CsrfFailed(PageRefused):
    """A POST without the session's CSRF token."""

    def __init__(self):
        super().__init__(error_page(403, "This form has expired. Go back, reload the page and try again. "
                                         "Nothing was changed.", home=HOME))


class StaffVisit:
    """One request to the console: its session and the signed-in user (None on the sign-in page)."""

    def __init__(self, web: Web, request: Request, session: BrowserSession, staff: support.Staff | None):
        self.web, self.request, self.session, self.staff = web, request, session, staff
        self.ctx = web.ctx
        self.codec = web.console_sessions

    def render(self, template: str, data: dict, *, status: int = 200) -> Response:
        flash = self.session.take_flash()
        response = render(template, {"area": "console", "csrf": self.session.csrf, "flash": flash,
                                     "staff": self.staff, "fmt": Formatter(self.ctx.catalog.currency), **data},
                          status=status)
        if flash is not None:
            self.codec.save(response, self.request, self.session)
        return response

    def go(self, url: str, kind: str | None = None, text: str | None = None) -> Response:
        """303 to `url` (after a POST), with a one-time message of `kind` (success, error) for it."""
        return self.web.redirect(self.request, self.codec, self.session, url, flash=(kind, text) if kind else None)

    def audited(self, *, action: str, summary: str, reason: str | None, customer_id: str | None, work,
                details: dict | None = None, describe=None, done: str | None = None):
        """Run `work` as the signed-in user, with a reason and an audit record of how it ended:
        `summary` is what was asked (kept if it failed), `done` what it says once it succeeded."""
        return support.run_audited(self.ctx, self.staff, action=action, summary=summary, reason=reason,
                                   customer_id=customer_id, work=work, details=details, describe=describe,
                                   done=done)


def customer_url(customer_id: str) -> str:
    return f"/console/customers/{customer_id}"


def signed_in(request: Request, web: Annotated[Web, Depends(current_web)]) -> StaffVisit:
    """The session and its user, re-read on every request so that a session ended on the server
    (signed out, a disabled user, a changed password) is out at once, in every process."""
    web.ensure_bootstrap_users()
    session = web.console_sessions.load(request)
    if session is None or not session.user:
        raise SignedOut()
    with web.ctx.db.transaction(readonly=True) as db:
        # A signed cookie alone is not enough: the server must still hold the session (not
        # signed out, user not disabled, password not changed since).
        live = console_session_valid(db, session.sid, session.user, now=wall_now())
        staff = support.get_staff(db, session.user) if live else None
    if staff is None:
        raise SignedOut()
    return StaffVisit(web, request, session, staff)


async def admin_signed_in(visit: Annotated[StaffVisit, Depends(signed_in)]) -> StaffVisit:
    if not visit.staff.is_admin:
        raise Forbidden("Only an admin can manage console users.")
    return visit


posted_form = posted_form_of(signed_in, CsrfFailed)


SignedIn = Annotated[StaffVisit, Depends(signed_in)]
AdminSignedIn = Annotated[StaffVisit, Depends(admin_signed_in)]
PostedForm = Annotated[dict[str, str], Depends(posted_form)]
CSRF_CHECKED = [Depends(posted_form)]  # `dependencies=` of a POST whose form has nothing else


def sentence(exc: CreditflowError) -> str:
    message = exc.message.strip()
    message = message[:1].upper() + message[1:]
    return message if message.endswith(".") else message + "."


def minor_units(text: str) -> int | None:
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
