"""Wiring: the billing page and the support console as routes of an application.

    include_web(app, ctx, secret_key=...)   adds both to an application (the API's)
    create_web_app(ctx, secret_key=...)     a bare application with only them (tests, demos)
"""

from __future__ import annotations

from fastapi import FastAPI

from creditflow.web.billing import billing_router
from creditflow.web.console import console_router
from creditflow.web.site import Web, current_web

__all__ = ["Web", "create_web_app", "current_web", "include_web"]


def include_web(app: FastAPI, ctx, *, secret_key: str, bootstrap_users: bool = True) -> Web:
    """Add the billing page (/billing) and the support console (/console) to `app`.

    With `bootstrap_users`, console users listed in CREDITFLOW_SUPPORT_USERS are created (if
    missing) on the first console request."""
    web = Web.build(ctx, secret_key)
    web.bootstrap_users = bootstrap_users
    app.state.web = web
    app.include_router(billing_router())
    app.include_router(console_router())
    return web


def create_web_app(ctx, *, secret_key: str, bootstrap_users: bool = False) -> FastAPI:
    app = FastAPI(title="creditflow billing", docs_url=None, redoc_url=None, openapi_url=None)
    include_web(app, ctx, secret_key=secret_key, bootstrap_users=bootstrap_users)
    return app
