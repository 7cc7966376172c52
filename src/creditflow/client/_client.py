"""The clients: `Client` (blocking) and `AsyncClient` (asyncio), over httpx.

Both send the same calls (`calls.py`) and share everything but the sending and the waiting: the
retry policy, the idempotency keys and the error mapping are written once, in `_Base`.

Retries: a request that got no answer (a connection error, a timeout), a 429 or a 5xx is sent
again, up to `max_retries` times with exponential backoff. A write is only ever retried with
the same `Idempotency-Key`: the client makes one up per call unless you pass yours, so a retried
spend or purchase is done once, whatever happened to the first answer.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx

from creditflow.client import calls
from creditflow.client.calls import Call
from creditflow.client.errors import LIMIT_CODES, APIConnectionError, error_for

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M")

# What one attempt gets: an answer, or none (a connection error, a timeout).
_Outcome = httpx.Response | httpx.TransportError

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 2
_RETRY_STATUSES = {429, 500, 502, 503, 504}


class Sync:
    """Marks the areas of `Client`: their methods answer directly."""


class Async:
    """Marks the areas of `AsyncClient`: their methods answer awaitables."""


class _Endpoint(Generic[P, T]):
    """A method of an area: the call is built by `calls`, sent by the area's client."""

    def __init__(self, build: Callable[P, Call[T]]):
        self.build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, area: None, owner: type) -> "_Endpoint[P, T]": ...
    @overload
    def __get__(self, area: "_Area[Sync]", owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, area: "_Area[Async]", owner: type) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, area, owner):
        if area is None:
            return self
        build, send = self.build, area._send
        return lambda *args, **kwargs: send(build(*args, **kwargs))


class _Area(Generic[M]):
    def __init__(self, send: Callable[[Call[Any]], Any]):
        self._send = send


class Customers(_Area[M]):
    create = _Endpoint(calls.create_customer)
    get = _Endpoint(calls.get_customer)
    update = _Endpoint(calls.update_customer)
    list = _Endpoint(calls.list_customers)
    set_payment_method = _Endpoint(calls.set_payment_method)
    get_payment_method = _Endpoint(calls.get_payment_method)


class Subscriptions(_Area[M]):
    create = _Endpoint(calls.create_subscription)
    get = _Endpoint(calls.get_subscription)
    of_customer = _Endpoint(calls.customer_subscription)
    preview_change = _Endpoint(calls.preview_change)
    change = _Endpoint(calls.change_subscription)
    cancel_scheduled_change = _Endpoint(calls.cancel_scheduled_change)
    cancel = _Endpoint(calls.cancel_subscription)
    resume = _Endpoint(calls.resume_subscription)
    apply_discount = _Endpoint(calls.apply_discount)


class Coupons(_Area[M]):
    create = _Endpoint(calls.create_coupon)
    get = _Endpoint(calls.get_coupon)


class Credits(_Area[M]):
    balance = _Endpoint(calls.get_balance)
    spend = _Endpoint(calls.spend)
    refund = _Endpoint(calls.refund_spend)
    hold = _Endpoint(calls.hold)
    get_hold = _Endpoint(calls.get_hold)
    settle = _Endpoint(calls.settle_hold)
    release = _Endpoint(calls.release_hold)
    grant = _Endpoint(calls.grant)
    ledger = _Endpoint(calls.ledger)
    top_up = _Endpoint(calls.top_up)
    estimate = _Endpoint(calls.estimate)
    entitlements = _Endpoint(calls.entitlements)
    transfer = _Endpoint(calls.transfer)


class Teams(_Area[M]):
    """Members of a customer's team, and auto top-up."""

    invite = _Endpoint(calls.invite_member)
    list = _Endpoint(calls.list_members)
    get = _Endpoint(calls.get_member)
    accept = _Endpoint(calls.accept_member)
    update = _Endpoint(calls.update_member)
    remove = _Endpoint(calls.remove_member)
    set_auto_top_up = _Endpoint(calls.set_auto_top_up)
    get_auto_top_up = _Endpoint(calls.get_auto_top_up)


class Invoices(_Area[M]):
    list = _Endpoint(calls.list_invoices)
    get = _Endpoint(calls.get_invoice)
    refund_eligibility = _Endpoint(calls.refund_eligibility)
    refund = _Endpoint(calls.create_refund)


class Events(_Area[M]):
    list = _Endpoint(calls.list_events)
    create_webhook_endpoint = _Endpoint(calls.create_webhook_endpoint)
    list_webhook_endpoints = _Endpoint(calls.list_webhook_endpoints)
    delete_webhook_endpoint = _Endpoint(calls.delete_webhook_endpoint)


class Operations(_Area[M]):
    """The billing page's links, test clocks and the catalog."""

    create_portal_session = _Endpoint(calls.create_portal_session)
    create_test_clock = _Endpoint(calls.create_test_clock)
    get_test_clock = _Endpoint(calls.get_test_clock)
    advance_test_clock = _Endpoint(calls.advance_test_clock)
    catalog = _Endpoint(calls.get_catalog)


class _Base(Generic[M]):
    def __init__(self, send: Callable[[Call[Any]], Any], base_url: str, api_key: str, max_retries: int):
        if not api_key:
            raise ValueError("api_key is required")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self.customers: Customers[M] = Customers(send)
        self.subscriptions: Subscriptions[M] = Subscriptions(send)
        self.coupons: Coupons[M] = Coupons(send)
        self.credits: Credits[M] = Credits(send)
        self.invoices: Invoices[M] = Invoices(send)
        self.teams: Teams[M] = Teams(send)
        self.events: Events[M] = Events(send)
        self.operations: Operations[M] = Operations(send)

    def _request(self, call: Call[Any]) -> dict[str, Any]:
        """httpx's arguments for a call, its idempotency key fixed for every retry."""
        headers = dict(self._headers)
        if call.writes:
            headers["Idempotency-Key"] = call.idempotency_key or f"cf-{uuid.uuid4()}"
        return {"method": call.method, "url": self.base_url + call.path, "headers": headers,
                "params": call.query or None, "json": call.body}

    def _retry_after(self, attempt: int, outcome: _Outcome) -> float | None:
        """Seconds to wait before sending again, or None to give up with this outcome."""
        response = outcome if isinstance(outcome, httpx.Response) else None
        if attempt >= self.max_retries:
            return None
        if response is not None and response.status_code not in _RETRY_STATUSES:
            return None
        if response is not None and response.status_code == 429 and _plan_limit(response):
            return None  # a plan's limit on jobs frees up at `resets_at`, not in a moment
        hinted = response.headers.get("Retry-After") if response is not None else None
        if hinted and hinted.isdigit():
            return min(float(hinted), 30.0)
        return min(0.25 * 2**attempt, 8.0) * (0.5 + random.random() / 2)

    @staticmethod
    def _answer(call: Call[Any], outcome: _Outcome) -> Any:
        """The call's result, or its error: the API's, or APIConnectionError without an answer."""
        if isinstance(outcome, httpx.TransportError):
            raise APIConnectionError(f"{call.method} {call.path}: {outcome}") from outcome
        response = outcome
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            return body
        raise error_for(response.status_code, body)


class Client(_Base[Sync]):
    """Blocking client. `Client(base_url, api_key)`; use it as a context manager, or `close()`."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
                 max_retries: int = DEFAULT_RETRIES, http: httpx.Client | None = None):
        super().__init__(self._run, base_url, api_key, max_retries)
        self._http = http or httpx.Client(timeout=timeout)

    def _run(self, call: Call[T]) -> T:
        request = self._request(call)
        attempt = 0
        while True:
            try:
                outcome: _Outcome = self._http.request(**request)
            except httpx.TransportError as exc:
                outcome = exc
            wait = self._retry_after(attempt, outcome)
            if wait is None:
                return self._answer(call, outcome)
            time.sleep(wait)
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base[Async]):
    """The same API for asyncio: every method answers an awaitable."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
                 max_retries: int = DEFAULT_RETRIES, http: httpx.AsyncClient | None = None):
        super().__init__(self._run, base_url, api_key, max_retries)
        self._http = http or httpx.AsyncClient(timeout=timeout)

    async def _run(self, call: Call[T]) -> T:
        request = self._request(call)
        attempt = 0
        while True:
            try:
                outcome: _Outcome = await self._http.request(**request)
            except httpx.TransportError as exc:
                outcome = exc
            wait = self._retry_after(attempt, outcome)
            if wait is None:
                return self._answer(call, outcome)
            await asyncio.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _plan_limit(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") in LIMIT_CODES
