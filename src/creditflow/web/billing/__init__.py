"""The Billing and Subscription page: the plan and its credits, plan changes through a quote,
subscribing, cancelling and resuming, credit top-ups, invoices and the credit history.

The browser arrives through a one-time portal link and gets a session bound to that one
customer; every object a request names (invoice, quote) is checked against it, and another
customer's answers 404 exactly like a missing one. Every POST carries the session's CSRF
token and ends in a redirect (post/redirect/get) with a one-time message.
"""

from __future__ import annotations

from fastapi import APIRouter

from creditflow.web.billing import changes, entry, purchases, records
from creditflow.web.billing.pages import HOME
from creditflow.web.rendering import HTMLErrorRoute, error_page


def billing_router() -> APIRouter:
    router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
    for module in (entry, changes, purchases, records):
        router.include_router(module.router)
    router.add_api_route("/billing/{rest:path}", not_found, methods=["GET"])
    return router


async def not_found(rest: str):
    """Any other address under /billing: an HTML page, not the API's JSON."""
    return error_page(404, "There's nothing here, or it isn't yours to see.", home=HOME)
