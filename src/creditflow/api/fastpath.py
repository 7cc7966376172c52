"""The API's busiest requests on their own path: the credit spend, and the cost estimate.

`POST /v1/customers/{id}/credits/spend` is the request a host app makes most, and
`POST /v1/customers/{id}/credits/estimate` is asked whenever its user changes an option on the
Generate button. Both are still FastAPI routes (routes/credits.py, routes/pricing.py), which is
what /openapi.json describes and what answers every request these paths do not take. Each path
is an ASGI layer inside the gate (so the size limit, the API key, the rate limit and the
Idempotency-Key have been dealt with) that serves the ordinary request itself: the same body
model, the same use case, the same response model and the same error mapping, without FastAPI's
routing, dependency solving and per-request set-up, and with one thread-pool hop instead of two
(FastAPI validates the response of a `def` route in the pool); on SQLite neither the usual
spend (`SpendPath`) nor the estimate (`EstimatePath`) needs one. A body it cannot validate goes
on to the route, so that validation errors read the same. The body is the one the gate read (in
the scope), not read a second time.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from typing import Any, ClassVar

from anyio import to_thread
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from creditflow.api.errors import exception_response
from creditflow.api.gate import BODY, replaying
from creditflow.api.observe import ROUTE
from creditflow.api.schemas.credits import SpendCreate, SpendRead
from creditflow.api.schemas.pricing import EstimateCreate, EstimateRead
from creditflow.generation.service import estimate_job, queue_spend_job, spend_job


class FastPath:
    """One `POST {prefix}/customers/{customer_id}{suffix}` route served without the router."""

    suffix: ClassVar[str]
    request_model: ClassVar[type[BaseModel]]
    response_model: ClassVar[Any]  # a Read model with `of(result)`

    def __init__(self, app: ASGIApp, *, ctx, prefix: str = "/v1"):
        self.app, self.ctx = app, ctx
        self.customers = prefix + "/customers/"
        self.route = self.customers + "{customer_id}" + self.suffix  # for api/observe.py's labels

    def run(self, customer_id: str, request: Any) -> Any:
        """The use case, in a worker thread."""
        raise NotImplementedError

    async def call(self, customer_id: str, request: Any) -> Any:
        """`run` in a worker thread (the use case reads and writes the database)."""
        return await to_thread.run_sync(lambda: self.run(customer_id, request))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        customer_id = self._customer(scope) if scope["type"] == "http" else None
        if customer_id is None:
            await self.app(scope, receive, send)
            return
        body = scope.get(BODY)  # read by the gate, whose `receive` still gives it to the route
        if body is None:
            body = await _read_body(receive)
            receive = replaying(body, receive)
        request = self._parse(body) if _is_json(scope["headers"]) else None
        if request is None:  # the route answers, with FastAPI's own reading of the request
            await self.app(scope, receive, send)
            return
        scope[ROUTE], scope["path_params"] = self.route, {"customer_id": customer_id}
        try:
            result = await self.call(customer_id, request)
        except Exception as exc:  # noqa: BLE001 - mapped exactly as the route's handlers map it
            response = exception_response(exc, "POST", scope["path"])
            await response(scope, receive, send)
            return
        model = self.response_model
        content = model.__pydantic_serializer__.to_json(model.of(result), by_alias=True)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(content)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": content})

    def _customer(self, scope: Scope) -> str | None:
        """The customer id when the request is this path's, as the route's `{customer_id}` reads it."""
        path = scope["path"]
        if scope["method"] != "POST" or not path.endswith(self.suffix) or not path.startswith(self.customers):
            return None
        if scope.get("root_path"):  # mounted under a prefix: leave the matching to the router
            return None
        customer_id = path[len(self.customers):-len(self.suffix)]
        return customer_id if customer_id and "/" not in customer_id else None

    def _parse(self, body: bytes) -> BaseModel | None:
        try:
            data = json.loads(body)  # what the route does (Starlette's Request.json)
        except (ValueError, RecursionError):  # deeply nested arrays exhaust the parser's stack
            return None
        if not isinstance(data, dict):
            return None
        try:
            return self.request_model.model_validate(data)
        except ValidationError:
            return None


class SpendPath(FastPath):
    """On SQLite a usual spend is handed to the database's grouped writer (`queue_spend_job`),
    which answers through `Answers`: no thread of the pool is taken for it. Whatever the writer
    does not take or hands back goes to `spend_job` in a worker thread, as on PostgreSQL."""

    suffix, request_model, response_model = "/credits/spend", SpendCreate, SpendRead

    def __init__(self, app: ASGIApp, *, ctx, prefix: str = "/v1"):
        super().__init__(app, ctx=ctx, prefix=prefix)
        self._queued = ctx.db.is_sqlite  # PostgreSQL has no grouped writer
        self._answers = Answers()

    def run(self, customer_id: str, spend: SpendCreate):
        return spend_job(self.ctx, customer_id, amount=spend.amount, options=spend.options, feature=spend.feature,
                         reference=spend.reference, member=spend.member)

    async def call(self, customer_id: str, spend: SpendCreate):
        if self._queued:
            answer = asyncio.get_running_loop().create_future()
            if queue_spend_job(self.ctx, customer_id, amount=spend.amount, options=spend.options,
                               feature=spend.feature, reference=spend.reference, member=spend.member,
                               on_done=lambda result: self._answers.deliver(answer, result)):
                result = await _awaited_to_the_end(answer)
                if result is not None:
                    return result
        return await super().call(customer_id, spend)


class Answers:
    """Results that another thread hands to the event loops awaiting them, each loop woken once
    for all that arrived meanwhile. (`call_soon_threadsafe` writes to the loop's wake-up pipe
    every time: once per spend would cost as much as the spend's own statements.)"""

    def __init__(self):
        self._lock = threading.Lock()
        self._ready: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Any]]] = {}

    def deliver(self, future: asyncio.Future, result: Any) -> None:
        """From any thread: `future` gets `result` on its loop."""
        loop = future.get_loop()
        with self._lock:
            ready = self._ready.setdefault(loop, [])
            ready.append((future, result))
            if len(ready) > 1:  # the loop is woken already, and has not yet taken the others
                return
        try:
            loop.call_soon_threadsafe(self._settle, loop)
        except RuntimeError:  # the loop is closed: nobody awaits these any more
            with self._lock:
                self._ready.pop(loop, None)

    def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            ready = self._ready.pop(loop, ())
        for future, result in ready:
            if not future.done():
                future.set_result(result)


async def _awaited_to_the_end(future: asyncio.Future) -> Any:
    """The future's result; a cancelled request still waits for it, as it would for a worker
    thread (anyio does not abandon one), so that what is answered and stored for an
    Idempotency-Key never runs ahead of what was written."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await future
        raise


class EstimatePath(FastPath):
    """On SQLite the estimate's one read runs on the event loop itself, on a read-only connection
    of its own: in WAL mode a read never waits for writers, and it takes microseconds, far less
    than a hop to a worker thread and back. If SQLite says busy all the same (a rare moment of
    its own housekeeping), that estimate goes to a worker thread, as on PostgreSQL, where every
    estimate does."""

    suffix, request_model, response_model = "/credits/estimate", EstimateCreate, EstimateRead

    def __init__(self, app: ASGIApp, *, ctx, prefix: str = "/v1"):
        super().__init__(app, ctx=ctx, prefix=prefix)
        self._inline = _sqlite_file(ctx.db)
        self._readers = threading.local()  # one connection per thread that serves requests

    def run(self, customer_id: str, request: EstimateCreate, connection=None):
        return estimate_job(self.ctx, customer_id, feature=request.feature, options=request.options,
                            member=request.member, connection=connection)

    async def call(self, customer_id: str, request: EstimateCreate):
        if self._inline:
            try:
                return self.run(customer_id, request, self._reader())
            except sqlite3.OperationalError:  # busy (the reader never waits): a worker thread will
                pass
        return await super().call(customer_id, request)

    def _reader(self) -> sqlite3.Connection:
        connection = getattr(self._readers, "connection", None)
        if connection is None:
            engine = self.ctx.db.engine
            args, kwargs = engine.dialect.create_connect_args(engine.url)
            connection = sqlite3.connect(*args, **{**kwargs, "timeout": 0, "check_same_thread": False,
                                                   "isolation_level": None})
            connection.execute("PRAGMA query_only=ON")
            self._readers.connection = connection
        return connection


def _sqlite_file(db) -> bool:
    """A SQLite database in a file (a connection of its own sees what the pool's see)."""
    url = db.engine.url
    return db.is_sqlite and url.database not in (None, "", ":memory:") and "mode=memory" not in str(url)


def _is_json(headers) -> bool:
    """A content type the route reads as JSON; anything else (or none) goes to the route."""
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


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
