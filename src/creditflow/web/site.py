"""What every page handler shares: the `Web` of its application (context, templates, sessions).

Page handlers that read or write the database, or call the payment gateway, are plain `def`
functions: FastAPI runs them in its thread pool, so a slow gateway or a slow query never holds
up the event loop (and with it every other page and API request of the process). Only the
work that must be awaited, reading a POSTed form, happens on the loop, in async dependencies
that hand the form over to the handler.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from creditflow.web.security import (
    BILLING_COOKIE,
    BILLING_MAX_AGE,
    CONSOLE_COOKIE,
    CONSOLE_MAX_AGE,
    BrowserSession,
    LoginThrottle,
    SessionCodec,
)

log = logging.getLogger("creditflow.web")
_bootstrap_lock = threading.Lock()


@dataclass
class Web:
    """What every page handler needs: the engine's context and the session codecs."""

    ctx: object
    secret_key: str
    billing_sessions: SessionCodec
    console_sessions: SessionCodec
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    bootstrap_users: bool = False
    _bootstrapped: bool = False

    def ensure_bootstrap_users(self) -> None:
        """Create the console users of CREDITFLOW_SUPPORT_USERS, once, on the first console
        request (not at start-up: the database may not be migrated yet when the app is built)."""
        if not self.bootstrap_users or self._bootstrapped:
            return
        with _bootstrap_lock:
            if self._bootstrapped:
                return
            from creditflow.support.service import bootstrap_from_env

            created = bootstrap_from_env(self.ctx.db, now=self.ctx.clock.now())
            if created:
                log.info("created %d support console user(s) from CREDITFLOW_SUPPORT_USERS", created)
            self._bootstrapped = True

    @classmethod
    def build(cls, ctx, secret_key: str) -> "Web":
        if not secret_key:
            raise ValueError("the web pages need a secret key to sign sessions")
        return cls(
            ctx=ctx, secret_key=secret_key,
            billing_sessions=SessionCodec(secret_key, cookie=BILLING_COOKIE, path="/billing",
                                          max_age=BILLING_MAX_AGE),
            console_sessions=SessionCodec(secret_key, cookie=CONSOLE_COOKIE, path="/console",
                                          max_age=CONSOLE_MAX_AGE),
        )

    def redirect(self, request: Request, codec: SessionCodec, session: BrowserSession | None, url: str, *,
                 flash: tuple[str, str] | None = None) -> Response:
        """303 to a page (after a POST), carrying a one-time message for it."""
        response = RedirectResponse(url, status_code=303)
        if session is not None:
            if flash is not None:
                session.flash = {"kind": flash[0], "text": flash[1]}
            codec.save(response, request, session)
        return response


async def current_web(request: Request) -> Web:
    """The dependency that gives a page handler the `Web` of its application."""
    return request.app.state.web
