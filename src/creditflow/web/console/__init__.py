"""The support console: sign-in with roles, find a customer, and the support actions (an
immediate downgrade, ending a subscription now, refunds, promo grants), each with a reason and
an audit record (who, when, what, why).

Roles: `support` may use every customer action; `admin` may also manage console users.
"""

from __future__ import annotations

from fastapi import APIRouter

from creditflow.web.console import customers, entry, team
from creditflow.web.console.pages import HOME
from creditflow.web.rendering import HTMLErrorRoute, error_page


def console_router() -> APIRouter:
    router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
    for module in (entry, customers, team):
        router.include_router(module.router)
    router.add_api_route("/console/{rest:path}", not_found, methods=["GET"])
    return router


async def not_found(rest: str):
    return error_page(404, "There's nothing at this address.", home=HOME)
