"""What every /v1 request passes before its route: size limit, API key, rate limit, and the
Idempotency-Key of POST and DELETE requests.

A pure ASGI middleware, so that it sees the raw body (for the size limit and the request's
fingerprint) and the whole response (to store it for replays before it is sent).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict

import anyio
from anyio import to_thread
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditflow.api.errors import error_bytes
from creditflow.api.settings import Settings
from creditflow.auth.service import Principal, authenticate
from creditflow.idempotency import service as idempotency

log = logging.getLogger("creditflow.api")

# How long a process trusts a key it looked up: long enough to spare the database a look-up per
# request under load, short enough that a revoked key stops working everywhere within a second.
AUTH_CACHE_SECONDS = 0.5
PURGE_EVERY_SECONDS = 600.0
MAX_CACHED_HEADER = 256  # "Bearer " and a secret of at most 200 characters, with room for spaces
IDEMPOTENT_METHODS = ("POST", "DELETE")
# The request's body as the gate read it, in the ASGI scope.
BODY = "creditflow.body"


class TokenBuckets:
    """In-process token buckets, one per API key: `rate` tokens a second, at most `burst`.

    A bucket that has refilled to `burst` is the same as no bucket, so a long-lived process keeps
    only the keys used lately: buckets are kept in order of last use, and those untouched for
    `burst / rate` seconds (full again whatever they held) are dropped as requests come. At most
    `max_keys` are kept whatever the traffic; beyond that the least recently used is dropped
    (its key starts again from a full bucket)."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 10_000):
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self.refill_seconds = burst / rate
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float | None = None) -> float:
        """0 if the request may go, else the seconds until a token is there."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[key] = (tokens, now)  # last in the order: the most recently used
            self._forget(now)
            return wait

    def _forget(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            _, last = next(iter(buckets.values()))
            if now - last < self.refill_seconds and len(buckets) <= self.max_keys:
                return
            buckets.popitem(last=False)


class _Lookup:
    """A key's look-up under way, which other requests with the same key wait for."""

    def __init__(self):
        self.done = anyio.Event()
        self.principal: Principal | None = None
        self.error: BaseException | None = None


class Gate:
    def __init__(self, app: ASGIApp, *, ctx, settings: Settings, prefix: str = "/v1"):
        self.app, self.ctx, self.settings, self.prefix = app, ctx, settings, prefix
        self.buckets = TokenBuckets(settings.rate_limit, settings.burst)
        # The Authorization header's value -> the key's principal and until when it is trusted.
        self._auth_cache: dict[bytes, tuple[Principal, float]] = {}
        self._lookups: dict[tuple[bytes, int], _Lookup] = {}  # the look-up of each key under way
        self._last_purge = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._gate(scope, receive, tracking_send)
        except DBAPIError as exc:  # the key or idempotency look-up found no database
            if started:
                raise
            log.error("database error in the API gate: %s", exc.orig)
            await _reply(send, 503, error_bytes("unavailable", "the database is busy or unreachable; retry shortly"),
                         {"retry-after": "1"})

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only three headers matter here: one pass over the raw list, the last of each name
        # winning (as a dict of all of them would have it).
        length = authorization = key = None
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                length = value
            elif name == b"idempotency-key":
                key = value

        if length is not None and not length.decode("latin-1").isdigit():
            await _reply(send, 400, error_bytes("malformed_request", "Content-Length is not a number"))
            return
        if length is not None and int(length) > self.settings.max_body_bytes:
            await _reply(send, 413, error_bytes("request_too_large",
                                                f"the body is limited to {self.settings.max_body_bytes} bytes"))
            return

        principal = await self._authenticate(authorization or b"")
        if principal is None:
            await _reply(send, 401, error_bytes("unauthorized", "missing or wrong API key "
                                                "(Authorization: Bearer <secret key>)"),
                         {"www-authenticate": "Bearer"})
            return
        if not principal.can("server"):  # a metrics key reads GET /metrics and nothing else
            await _reply(send, 403, error_bytes("forbidden", f"a {principal.scope} key can't use the /v1 API"))
            return

        wait = self.buckets.take(principal.key_id)
        if wait > 0:
            await _reply(send, 429, error_bytes("rate_limited", "too many requests; retry after a moment"),
                         {"retry-after": str(max(1, math.ceil(wait)))})
            return

        body = await _read_body(receive, self.settings.max_body_bytes)
        if body is None:
            await _reply(send, 413, error_bytes("request_too_large",
                                                f"the body is limited to {self.settings.max_body_bytes} bytes"))
            return
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["principal"] = principal
        scope[BODY] = body  # for the layers inside that read it whole (api/fastpath.py)
        replay_receive = replaying(body, receive)

        if key is None or scope["method"] not in IDEMPOTENT_METHODS:
            await self.app(scope, replay_receive, send)
            return
        await self._idempotent(scope, replay_receive, send, principal, key.decode("latin-1"), body)

    async def _authenticate(self, authorization: bytes) -> Principal | None:
        # A key looked up lately is found by the header's raw bytes: no decoding or hashing.
        cached = self._auth_cache.get(authorization)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        scheme, _, secret = authorization.decode("latin-1").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret or len(secret) > 200:
            return None
        # One look-up at a time per key (and event loop, whose thread runs them all): when the
        # cached answer expires under load, the requests that arrive meanwhile wait for the one
        # look-up instead of each making its own (each on a thread and a connection of the pool).
        lookup_key = (authorization, threading.get_ident())
        pending = self._lookups.get(lookup_key)
        if pending is not None:
            await pending.done.wait()
            if pending.error is not None:
                raise pending.error
            return pending.principal
        pending = self._lookups[lookup_key] = _Lookup()

        def lookup() -> Principal | None:
            with self.ctx.db.transaction(readonly=True) as session:
                return authenticate(session, secret)

        try:
            principal = pending.principal = await to_thread.run_sync(lookup)
        except BaseException as exc:
            pending.error = exc
            raise
        finally:
            del self._lookups[lookup_key]
            pending.done.set()
        if principal is not None and len(authorization) <= MAX_CACHED_HEADER:
            if len(self._auth_cache) > 10_000:
                self._auth_cache.clear()
            self._auth_cache[authorization] = (principal, time.monotonic() + AUTH_CACHE_SECONDS)
        return principal

    async def _idempotent(self, scope, receive, send, principal: Principal, key: str, body: bytes) -> None:
        if not key.strip() or len(key) > idempotency.MAX_KEY_LENGTH:
            await _reply(send, 422, error_bytes(
                "invalid_request", f"Idempotency-Key must be 1 to {idempotency.MAX_KEY_LENGTH} characters",
                "Idempotency-Key"))
            return
        path = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
        digest = idempotency.fingerprint(scope["method"], path, body)
        db, now = self.ctx.db, self.ctx.clock.now()
        outcome = await to_thread.run_sync(lambda: idempotency.claim_or_wait(
            db, principal.key_id, key, digest, now=now, timeout=self.settings.idempotency_wait))
        if isinstance(outcome, idempotency.Replay):
            await _reply(send, outcome.status, outcome.body, {"idempotent-replayed": "true"})
            return
        if isinstance(outcome, idempotency.Mismatch):
            await _reply(send, 409, error_bytes("idempotency_key_reused", "this Idempotency-Key was used with a "
                                                "different request", "Idempotency-Key"))
            return
        if isinstance(outcome, idempotency.InProgress):
            await _reply(send, 409, error_bytes("idempotency_key_in_use", "a request with this Idempotency-Key is "
                                                "still being processed; retry later", "Idempotency-Key"),
                         {"retry-after": "1"})
            return

        # Claimed: run the request, keep its response, store it, then send it.
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await to_thread.run_sync(lambda: idempotency.release(db, outcome.record_id))
            raise
        status, response_body = start.get("status", 500), b"".join(chunks)
        if status >= 500:  # the work failed: let a retry do it
            await to_thread.run_sync(lambda: idempotency.release(db, outcome.record_id))
        else:
            await to_thread.run_sync(lambda: idempotency.complete(db, outcome.record_id, status, response_body,
                                                                  now=self.ctx.clock.now()))
        await send(start)
        await send({"type": "http.response.body", "body": response_body})
        await self._maybe_purge()

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = time.monotonic()
        await to_thread.run_sync(lambda: idempotency.purge(self.ctx.db, now=self.ctx.clock.now()))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, original: Receive) -> Receive:
    """The body already read, then whatever the connection says next (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


async def _reply(send: Send, status: int, body: bytes, headers: dict | None = None) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
