"""What every console handler shares: the signed-in user and their role, CSRF-checked forms,
rendering, post/redirect/get with a one-time message, and audited actions."""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from starlette.requests import Request
from starlette.responses import Response

from creditflow.kit.errors import CreditflowError, Forbidden, InvalidRequest
from creditflow.support import service as support
from creditflow.web.app import Web
from creditflow.web.rendering import Formatter, error_page, render
from creditflow.web.security import BrowserSession, csrf_ok

HOME = "/console"


class SignedOut(Exception):
    """No console session, or its user was disabled."""


class CsrfFailed(Exception):
    """A POST without the session's CSRF token."""


class ConsolePages:
    def __init__(self, web: Web):
        self.web = web
        self.ctx = web.ctx
        self.codec = web.console_sessions

    def signed_in(self, request: Request, *, admin: bool = False) -> tuple[BrowserSession, support.Staff]:
        """The session and its user, re-read on every request so a disabled user is out at once."""
        self.web.ensure_bootstrap_users()
        session = self.codec.load(request)
        if session is None or not session.user:
            raise SignedOut()
        with self.ctx.db.transaction(readonly=True) as db:
            staff = support.get_staff(db, session.user)
        if staff is None:
            raise SignedOut()
        if admin and not staff.is_admin:
            raise Forbidden("Only an admin can manage console users.")
        return session, staff

    async def form_of(self, request: Request, session: BrowserSession) -> dict:
        form = await request.form()
        if not csrf_ok(session, form.get("csrf_token")):
            raise CsrfFailed()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    def render(self, request: Request, session: BrowserSession, staff: support.Staff | None, template: str,
               data: dict, *, status: int = 200) -> Response:
        flash = session.take_flash()
        response = render(template, {"area": "console", "csrf": session.csrf, "flash": flash, "staff": staff,
                                     "fmt": Formatter(self.ctx.catalog.currency), **data}, status=status)
        if flash is not None:
            self.codec.save(response, request, session)
        return response

    def go(self, request: Request, session: BrowserSession, url: str, kind: str | None = None,
           text: str | None = None) -> Response:
        return self.web.redirect(request, self.codec, session, url, flash=(kind, text) if kind else None)

    def guarded(self, handler):
        @functools.wraps(handler)
        async def wrapper(request: Request, *args, **kwargs):
            try:
                return await handler(request, *args, **kwargs)
            except SignedOut:
                return self.web.redirect(request, self.codec, None, "/console/login")
            except CsrfFailed:
                return error_page(403, "This form has expired. Go back, reload the page and try again. "
                                       "Nothing was changed.", home=HOME)
        return wrapper

    @staticmethod
    def customer_url(customer_id: str) -> str:
        return f"/console/customers/{customer_id}"

    def audited(self, staff: support.Staff, *, action: str, summary: str, reason: str | None,
                customer_id: str | None, work, details: dict | None = None, describe=None):
        return support.run_audited(self.ctx, staff, action=action, summary=summary, reason=reason,
                                   customer_id=customer_id, work=work, details=details, describe=describe)


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
