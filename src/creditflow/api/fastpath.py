"""The credit spend's own path through the API: the request a host app makes most.

`POST /v1/customers/{id}/credits/spend` is still a FastAPI route (routes/credits.py), which is
what /openapi.json describes and what answers every request this path does not take. This ASGI
layer sits inside the gate (so the size limit, the API key, the rate limit and the
Idempotency-Key have been dealt with) and serves the ordinary spend itself: the same body model
(`SpendCreate`), the same use case, the same response model (`SpendRead`) and the same error
mapping, without FastAPI's routing, dependency solving and per-request set-up, and with one
thread-pool hop instead of two (FastAPI validates the response of a `def` route in the pool).
A body it cannot validate goes on to the route, so that validation errors read the same.
"""

from __future__ import annotations

import json

from anyio import to_thread
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from creditflow.api.errors import exception_response
from creditflow.api.gate import replaying
from creditflow.api.observe import ROUTE
from creditflow.api.schemas.credits import SpendCreate, SpendRead
from creditflow.generation.service import spend_job

SPEND_SUFFIX = "/credits/spend"
_SPEND_RESPONSE = SpendRead.__pydantic_serializer__


class SpendPath:
    def __init__(self, app: ASGIApp, *, ctx, prefix: str = "/v1"):
        self.app, self.ctx = app, ctx
        self.customers = prefix + "/customers/"
        self.route = self.customers + "{customer_id}" + SPEND_SUFFIX  # for api/observe.py's labels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        customer_id = self._customer(scope) if scope["type"] == "http" else None
        if customer_id is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        spend = _parse(body) if _is_json(scope["headers"]) else None
        if spend is None:  # the route answers, with FastAPI's own reading of the request
            await self.app(scope, replaying(body, receive), send)
            return
        ctx = self.ctx
        scope[ROUTE], scope["path_params"] = self.route, {"customer_id": customer_id}
        try:
            result = await to_thread.run_sync(lambda: spend_job(
                ctx, customer_id, amount=spend.amount, options=spend.options, feature=spend.feature,
                reference=spend.reference, member=spend.member))
        except Exception as exc:  # noqa: BLE001 - mapped exactly as the route's handlers map it
            response = exception_response(exc, "POST", scope["path"])
            await response(scope, receive, send)
            return
        content = _SPEND_RESPONSE.to_json(SpendRead.of(result), by_alias=True)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(content)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": content})

    def _customer(self, scope: Scope) -> str | None:
        """The customer id when the request is a spend, as the route's `{customer_id}` reads it."""
        path = scope["path"]
        if scope["method"] != "POST" or not path.endswith(SPEND_SUFFIX) or not path.startswith(self.customers):
            return None
        if scope.get("root_path"):  # mounted under a prefix: leave the matching to the router
            return None
        customer_id = path[len(self.customers):-len(SPEND_SUFFIX)]
        return customer_id if customer_id and "/" not in customer_id else None


def _is_json(headers) -> bool:
    """A content type the route reads as JSON; anything else (or none) goes to the route."""
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


def _parse(body: bytes) -> SpendCreate | None:
    try:
        data = json.loads(body)  # what the route does (Starlette's Request.json)
    except (ValueError, RecursionError):  # deeply nested arrays exhaust the parser's stack
        return None
    if not isinstance(data, dict):
        return None
    try:
        return SpendCreate.model_validate(data)
    except ValidationError:
        return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)

