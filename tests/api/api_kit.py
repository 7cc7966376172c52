"""Driving the real app (`create_app`) through HTTP with Starlette's TestClient."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.wiring import build_context

SERVER_KEY = "sk_test_server_0123456789"
SUPPORT_KEY = "sk_test_support_0123456789"
SETTINGS = Settings(secret_key="test-secret", test_clocks=True,
                    bootstrap_keys=f"{SERVER_KEY}:server,{SUPPORT_KEY}:support")


class Api:
    """A TestClient that sends the server key unless told otherwise, with shortcuts."""

    def __init__(self, client: TestClient, ctx):
        self.client, self.ctx = client, ctx

    def request(self, method: str, path: str, *, key: str | None = SERVER_KEY, headers: dict | None = None, **kw):
        headers = dict(headers or {})
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {key}")
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def ok(self, method: str, path: str, json=None, status: int | None = None, **kw) -> dict:
        response = self.request(method, path, json=json, **kw)
        expected = status or (201 if method == "POST" and _creates(path) else 200)
        assert response.status_code == expected, response.text
        return response.json()

    def customer(self, external_id: str | None = None, *, payment_method: str | None = "pm_card_ok", **fields) -> dict:
        import uuid

        body = {"external_id": external_id or f"ext_{uuid.uuid4().hex[:10]}", "email": "ada@example.com", **fields}
        customer = self.ok("POST", "/v1/customers", body)
        if payment_method:
            self.ok("POST", f"/v1/customers/{customer['id']}/payment_method", {"token": payment_method})
        return customer

    def subscribed(self, plan: str = "standard", term: str = "monthly", **customer_fields) -> tuple[dict, dict]:
        customer = self.customer(**customer_fields)
        sub = self.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": plan, "term": term})
        return customer, sub

    def clock(self, frozen_time: str = "2026-03-10T10:00:00Z") -> dict:
        return self.ok("POST", "/v1/test_clocks", {"frozen_time": frozen_time})

    def advance(self, clock_id: str, frozen_time: str) -> dict:
        return self.ok("POST", f"/v1/test_clocks/{clock_id}/advance", {"frozen_time": frozen_time})


def _creates(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1] in (
        "customers", "subscriptions", "holds", "grants", "top_ups", "refunds", "webhook_endpoints",
        "portal_sessions", "test_clocks")


def assert_error(response, status: int, code: str, param: str | None = ...) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    if param is not ...:
        assert error["param"] == param, error
    return error


def make_api(db, **settings) -> Api:
    ctx = build_context(db)
    app = create_app(ctx, replace(SETTINGS, **settings))
    return Api(TestClient(app), ctx)


class LiveServer:
    """The app served by a real uvicorn server on a local port (a free one unless given), in a
    thread."""

    def __init__(self, app, port: int | None = None):
        import socket

        import uvicorn

        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))

    def __enter__(self) -> "LiveServer":
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
