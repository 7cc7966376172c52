"""The support console: sign-in with roles, find a customer, and the support actions (SPEC D2,
M1, X4, promo grants), each with a reason and an audit record (who, when, what, why).

Roles: `support` may use every customer action; `admin` may also manage console users.
"""

from __future__ import annotations

from fastapi import APIRouter

from creditflow.web.app import Web
from creditflow.web.console import customers, entry, team
from creditflow.web.console.pages import HOME, ConsolePages
from creditflow.web.rendering import HTMLErrorRoute, error_page


def console_router(web: Web) -> APIRouter:
    router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
    pages = ConsolePages(web)
    for module in (entry, customers, team):
        module.add_routes(router, pages)

    @router.get("/console/{rest:path}")
    async def not_found(rest: str):
        return error_page(404, "There's nothing at this address.", home=HOME)

    return router
