"""The estimate's own path through the API, as `fastpath.py` is the spend's.

`POST /v1/customers/{id}/credits/estimate` is what a host app calls whenever its user changes an
option on the Generate button, so it is asked far more often than anything is spent. The route
(routes/pricing.py) still answers every request this path does not take and is what
/openapi.json describes; this ASGI layer, inside the gate, serves the ordinary estimate with the
same body model, use case, response model and error mapping, without FastAPI's routing and
dependency solving. A body it cannot validate goes on to the route, so validation errors read
the same.
"""

from __future__ import annotations

import json

from anyio import to_thread
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from creditflow.api.errors import exception_response
from creditflow.api.fastpath import _is_json, _read_body
from creditflow.api.gate import replaying
from creditflow.api.observe import ROUTE
from creditflow.api.schemas.pricing import EstimateCreate, EstimateRead
from creditflow.generation.service import estimate_job

ESTIMATE_SUFFIX = "/credits/estimate"
_RESPONSE = EstimateRead.__pydantic_serializer__


class EstimatePath:
    def __init__(self, app: ASGIApp, *, ctx, prefix: str = "/v1"):
        self.app, self.ctx = app, ctx
        self.customers = prefix + "/customers/"
        self.route = self.customers + "{customer_id}" + ESTIMATE_SUFFIX  # for api/observe.py's labels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        customer_id = self._customer(scope) if scope["type"] == "http" else None
        if customer_id is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        request = _parse(body) if _is_json(scope["headers"]) else None
        if request is None:  # the route answers, with FastAPI's own reading of the request
            await self.app(scope, replaying(body, receive), send)
            return
        ctx = self.ctx
        scope[ROUTE], scope["path_params"] = self.route, {"customer_id": customer_id}
        try:
            result = await to_thread.run_sync(lambda: estimate_job(
                ctx, customer_id, feature=request.feature, options=request.options, member=request.member))
        except Exception as exc:  # noqa: BLE001 - mapped exactly as the route's handlers map it
            response = exception_response(exc, "POST", scope["path"])
            await response(scope, receive, send)
            return
        content = _RESPONSE.to_json(EstimateRead.of(result), by_alias=True)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(content)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": content})

    def _customer(self, scope: Scope) -> str | None:
        path = scope["path"]
        if scope["method"] != "POST" or not path.endswith(ESTIMATE_SUFFIX) or not path.startswith(self.customers):
            return None
        if scope.get("root_path"):
            return None
        customer_id = path[len(self.customers):-len(ESTIMATE_SUFFIX)]
        return customer_id if customer_id and "/" not in customer_id else None


def _parse(body: bytes) -> EstimateCreate | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        return EstimateCreate.model_validate(data)
    except ValidationError:
        return None
