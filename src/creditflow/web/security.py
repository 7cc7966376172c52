"""Browser sessions and CSRF tokens.

A session is a cookie signed with the secret key (itsdangerous, HMAC over the payload), so it
can't be forged or edited; it holds who the browser is (the one customer a portal link was
opened for, or a console user) and the session's CSRF token. Nothing else is
trusted from the browser: every object a request names is checked against the session.

A console session is also kept on the server (support/sessions.py): the cookie carries its
random token (`sid`), and the session is valid only while the server still has it, so that
signing out, disabling the user or changing their password ends it even for a copy of the
cookie. A billing session lasts an hour and sees one customer; it is the cookie alone.

CSRF: every form carries the session's token in a hidden field and every POST compares it in
constant time; the cookie is SameSite=Lax and HttpOnly besides.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from fastapi import Depends
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from creditflow.web.rendering import PageRefused, error_page

BILLING_COOKIE = "cf_billing"
CONSOLE_COOKIE = "cf_console"
BILLING_MAX_AGE = 60 * 60  # a billing page session lasts an hour after the link was opened
CONSOLE_MAX_AGE = 8 * 60 * 60  # a working day


@dataclass
class BrowserSession:
    """The contents of a session cookie."""

    expires: int  # unix time; set once, when the session starts
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    customer: str | None = None  # billing: the customer this browser may see
    return_url: str | None = None  # billing: where "Back" goes
    member: str | None = None  # billing: the team member the page was opened for (None: the customer)
    user: str | None = None  # console: the signed-in support user's id
    sid: str | None = None  # console: the server-side session's token (support/sessions.py)
    flash: dict | None = None  # one message for the next page: {"kind", "text"}

    def to_dict(self) -> dict:
        data = {"exp": self.expires, "csrf": self.csrf}
        for key in ("customer", "return_url", "user", "sid", "flash", "member"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "BrowserSession":
        return cls(expires=data["exp"], csrf=str(data.get("csrf") or secrets.token_urlsafe(24)),
                   customer=data.get("customer"), return_url=data.get("return_url"), user=data.get("user"),
                   sid=data.get("sid"), flash=data.get("flash"), member=data.get("member"))

    def take_flash(self) -> dict | None:
        flash, self.flash = self.flash, None
        return flash


class SessionCodec:
    """Reads and writes one kind of session cookie (billing or console).

    The payload carries its own expiry (`exp`, set when the session starts), so rewriting the
    cookie, say for a flash message, never extends the session."""

    def __init__(self, secret_key: str, *, cookie: str, path: str, max_age: int):
        self.cookie, self.path, self.max_age = cookie, path, max_age
        self._serializer = URLSafeSerializer(secret_key, salt=f"creditflow.web.{cookie}")

    def load(self, request: Request) -> BrowserSession | None:
        """The session, or None when there is none, it was tampered with, or it expired."""
        raw = request.cookies.get(self.cookie)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int) or data["exp"] <= time.time():
            return None
        return BrowserSession.from_dict(data)

    def start(self) -> BrowserSession:
        return BrowserSession(expires=int(time.time()) + self.max_age)

    def save(self, response: Response, request: Request, session: BrowserSession) -> None:
        max_age = max(0, session.expires - int(time.time()))
        response.set_cookie(self.cookie, self._serializer.dumps(session.to_dict()), max_age=max_age,
                            path=self.path, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path=self.path)


def wall_now() -> datetime:
    """Now, for browser sessions: the wall clock, as the cookies' own expiry (`time.time()`), not
    the context's clock, which may be fixed or a customer's test clock."""
    return datetime.now(timezone.utc)


def session_expiry(session: BrowserSession) -> datetime:
    return datetime.fromtimestamp(session.expires, timezone.utc)


def csrf_ok(session: BrowserSession | None, submitted: str | None) -> bool:
    return bool(session and submitted and hmac.compare_digest(session.csrf, str(submitted)))


def posted_form_of(visit_of: Callable, refused: Callable[[], Exception]) -> Callable:
    """The dependency giving a POST handler its form, once the form's CSRF token matched the
    session of the visit that `visit_of` (a dependency) finds; `refused()` is raised if not."""

    async def posted_form(request: Request, visit=Depends(visit_of)) -> dict[str, str]:
        form = await read_form(request)
        if not csrf_ok(visit.session, form.get("csrf_token")):
            raise refused()
        return form

    return posted_form


# Our largest form has about a dozen fields and its longest field is a 1,000-character reason
# (up to 12 bytes a character once percent-encoded); anything beyond is not one of our forms.
MAX_FORM_FIELDS = 50
MAX_FORM_PART_BYTES = 16 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """The POSTed form's text fields. Awaited on the event loop, in a dependency, so that the
    handler that uses the form can be a plain `def`.

    A form with too many fields answers 400, one with a field (or any file) too big 413, as an
    error page, before any handler runs: nothing is changed. Starlette's own limits (1,000
    fields, 1 MB a part, any number of files spooled to disk) are far above any form of ours."""
    try:
        form = await request.form(max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_PART_BYTES, max_files=0)
    except HTTPException as exc:  # Starlette's answer to a form over a limit, or malformed
        raise _form_refused(request, str(exc.detail)) from None
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _form_refused(request: Request, detail: str) -> Exception:
    home = "/console" if request.url.path.startswith("/console") else "/billing"
    if "maximum size" in detail:
        return PageRefused(error_page(413, "That form was too large to accept. Nothing was changed.", home=home))
    return PageRefused(error_page(400, "That form wasn't one we could read. Please go back, reload the page and "
                                       "try again. Nothing was changed.", home=home))


class LoginThrottle:
    """Slows password guessing: after `limit` failed sign-ins for one username within `window`
    seconds, that username is refused until the window has passed. Kept in memory, per process:
    with several processes an attacker gets `limit` tries per process, still few."""

    def __init__(self, limit: int = 10, window: float = 15 * 60):
        self.limit, self.window = limit, window
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def blocked(self, username: str) -> bool:
        with self._lock:
            return len(self._recent(username.strip().lower(), time.monotonic())) >= self.limit

    def failed(self, username: str) -> None:
        key, now = username.strip().lower(), time.monotonic()
        with self._lock:
            self._failures[key] = self._recent(key, now) + [now]
            if len(self._failures) > 10_000:  # bound the memory a flood of made-up names can take
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username.strip().lower(), None)
