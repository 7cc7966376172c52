"""Watching the API run: a `Request-Id` on every response, one log line and the HTTP metrics per
request, and `GET /metrics` (Prometheus text format) for a key of scope `metrics`.

`install(app, ctx, settings)` wraps the application's whole middleware stack, outside
Starlette's error handling, so that a 500 and the gate's own answers (401, 413, 429) are seen,
timed and labelled like any other. Labels name the route template
(`/v1/customers/{customer_id}/credits/spend`), never the raw path: ids would make a new series
each. What this costs per request is a clock read, an id, two metric updates and, with the
access log on, the log line.
"""

from __future__ import annotations

import re
import time
from random import getrandbits
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from prometheus_client.core import GaugeMetricFamily
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditflow.api.deps import Unauthorized
from creditflow.api.settings import Settings
from creditflow.auth.service import METRICS, Principal, authenticate
from creditflow.context import Context
from creditflow.events.backlog import outbox_backlog
from creditflow.kit import metrics
from creditflow.kit.errors import Forbidden
from creditflow.kit.logs import REQUEST_ID as CURRENT_REQUEST_ID
from creditflow.kit.logs import get_logger

REQUEST_ID = "request-id"
# A route template set by a layer that answers without the router (api/fastpath.py).
ROUTE = "creditflow.route"
UNMATCHED = "unmatched"  # no route has this path: the label is never the raw path
_VALID_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")
# Any other method is labelled `other`: a label's values must stay few.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

access_log = get_logger("creditflow.access")
log = get_logger("creditflow.api")


def install(app: FastAPI, ctx: Context, settings: Settings) -> None:
    app.include_router(router)
    metrics.watch_pool(ctx.db.engine)
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: Observe(build(), routes=app.router.routes, access_log=settings.access_log)


class Observe:
    def __init__(self, app: ASGIApp, *, routes, access_log: bool = True):
        """`routes`: the application's, complete (the stack is built at the first request)."""
        self.app, self.access_log = app, access_log
        self.series: dict[tuple[str, str, int], tuple] = {}  # labelled children, looked up once
        # Each route's whole template: an included router's route knows only its own part.
        self.templates: dict[int, str] = {}
        self.patterns: list[tuple[re.Pattern, str]] = []
        for context in iter_route_contexts(routes):
            if context.path is not None:
                self.templates[id(context.original_route)] = context.path
                self.patterns.append((compile_path(context.path)[0], context.path))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _forgetting_at_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Not an id of the kit/ids.py kind: 96 random bits are enough, from the process's own
        # generator (os.urandom is a system call, which hands the interpreter lock to the
        # worker threads and waits to get it back: up to milliseconds under load).
        request_id = incoming_request_id(scope["headers"]) or f"req_{getrandbits(96):024x}"
        id_header = (b"request-id", request_id.encode())
        status = 500  # unless a response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = CURRENT_REQUEST_ID.set(request_id)  # on every log line of the request (kit/logs.py)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            CURRENT_REQUEST_ID.reset(token)
            self._done(scope, status, time.perf_counter() - started, request_id)

    def _done(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        method = scope["method"] if scope["method"] in METHODS else "other"
        route, params = self._route(scope)
        series = self.series.get((method, route, status))
        if series is None:
            series = self.series[(method, route, status)] = (
                metrics.HTTP_REQUESTS.labels(method, route, str(status)), metrics.HTTP_DURATION.labels(method, route))
        series[0].inc()
        series[1].observe(seconds)
        if not self.access_log:
            return
        principal = scope.get("state", {}).get("principal")
        access_log.info("request", method=method, route=route, status=status,
                        duration_ms=round(seconds * 1000, 2), request_id=request_id,
                        customer_id=params.get("customer_id"),
                        api_key_id=principal.key_id if principal is not None else None)

    def _route(self, scope: Scope) -> tuple[str, dict]:
        """The template of the route that answered and its path parameters; for an answer given
        before routing (the gate's), the route that would have."""
        route = scope.get("route")
        if route is not None:
            template = self.templates.get(id(route)) or getattr(route, "path", UNMATCHED)
            return template, scope.get("path_params") or {}
        template = scope.get(ROUTE)
        if template is not None:
            return template, scope.get("path_params") or {}
        path = scope["path"]
        for pattern, template in self.patterns:
            match = pattern.match(path)
            if match is not None:
                return template, match.groupdict()
        return UNMATCHED, {}


def _forgetting_at_shutdown(send: Send) -> Send:
    """uvicorn stops on SIGTERM by raising the signal again once shut down, which skips exit
    handlers: the process's live gauges are dropped when the app has shut down instead."""

    async def lifespan_send(message: Message) -> None:
        if message["type"] == "lifespan.shutdown.complete":
            metrics.forget_this_process()
        await send(message)

    return lifespan_send


def incoming_request_id(headers) -> str | None:
    """The caller's `Request-Id` when it is 1 to 128 letters, digits or `._:/+=-`; else None."""
    for name, value in headers:
        if name == b"request-id":
            return value.decode("ascii") if _VALID_ID.fullmatch(value) else None
    return None


# --- GET /metrics ---------------------------------------------------------------------------------

router = APIRouter()


def metrics_caller(request: Request) -> Principal:
    """The caller's key, which must have the `metrics` scope (401 without a key, 403 with
    another scope)."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    secret = secret.strip()
    principal = None
    if scheme.lower() == "bearer" and secret and len(secret) <= 200:
        principal = request.app.state.ctx.db.read(lambda session: authenticate(session, secret))
    if principal is None:
        raise Unauthorized("missing or wrong API key (Authorization: Bearer <secret key>)")
    if principal.scope != METRICS:
        raise Forbidden("reading metrics needs a metrics key", code="forbidden")
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


@router.get("/metrics", include_in_schema=False)
def read_metrics(request: Request, _: Annotated[Principal, Depends(metrics_caller)]) -> Response:
    return Response(metrics.render(OutboxCollector(request.app.state.ctx)), media_type=metrics.CONTENT_TYPE)


class OutboxCollector:
    """The outbox's backlog, read from the database when scraped (one process answers for all)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def collect(self):
        try:
            backlog = self.ctx.db.read(outbox_backlog)
        except Exception:  # noqa: BLE001 - the other metrics are still worth answering
            log.warning("could not read the outbox backlog for /metrics", exc_info=True)
            return
        now = self.ctx.clock.now()
        waiting = GaugeMetricFamily("creditflow_outbox_pending",
                                    "Outbox rows waiting: events not yet fanned out to webhook endpoints, "
                                    "webhook deliveries not yet acknowledged", labels=["queue"])
        age = GaugeMetricFamily("creditflow_outbox_oldest_pending_age_seconds",
                                "Age of the oldest waiting row of each queue (0 when none waits)", labels=["queue"])
        for queue in backlog:
            waiting.add_metric([queue.queue], queue.waiting)
            age.add_metric([queue.queue],
                           max((now - queue.oldest_at).total_seconds(), 0.0) if queue.oldest_at else 0.0)
        yield waiting
        yield age
