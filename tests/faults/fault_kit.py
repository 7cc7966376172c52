"""Helpers of the fault battery: a real `creditflow serve` process, a customer set up
in-process, and the invariants every fault must leave intact."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.wiring import build_context

CLI = [sys.executable, "-m", "creditflow.cli"]
SERVER_KEY, SUPPORT_KEY = "sk_fault_server_0123456789", "sk_fault_support_0123456789"
START = "2026-03-10T10:00:00Z"


class Server:
    """One `creditflow serve` process on `url`, optionally armed with a fault point."""

    def __init__(self, database_url: str, cwd, fault: str | None = None, env: dict | None = None,
                 args: tuple = ()):
        """`env` adds variables (a gateway, say); `args` adds `serve` options (`--no-worker`)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CREDITFLOW_DATABASE_URL": database_url, "CREDITFLOW_TEST_CLOCKS": "1",
               "CREDITFLOW_SECRET_KEY": "fault-secret",
               "CREDITFLOW_BOOTSTRAP_KEYS": f"{SERVER_KEY}:server,{SUPPORT_KEY}:support", **(env or {})}
        env.pop("CREDITFLOW_FAULT_POINT", None)
        if fault:
            env["CREDITFLOW_FAULT_POINT"] = fault
        self.process = subprocess.Popen(CLI + ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-migrate",
                                              *args],
                                        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "server exited at start"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not answer /healthz")

    def call(self, method: str, path: str, json=None, key: str = SERVER_KEY) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", json=json, timeout=60,
                             headers={"Authorization": f"Bearer {key}"})

    def ok(self, method: str, path: str, json=None, key: str = SERVER_KEY) -> dict:
        response = self.call(method, path, json, key)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def expect_killed(server: Server, method: str, path: str, json=None, key: str = SERVER_KEY) -> None:
    """The request dies with the server, by SIGKILL (not an error the server answered)."""
    try:
        response = server.call(method, path, json, key)
        raise AssertionError(f"the server answered {response.status_code}: {response.text}")
    except httpx.TransportError:
        pass
    assert server.process.wait(timeout=30) == -signal.SIGKILL


def sandbox_charges(conn) -> dict[str, list[int]]:
    """The amounts the sandbox gateway took, per invoice."""
    taken: dict[str, list[int]] = {}
    for invoice_id, amount in conn.execute(text(
            "SELECT a.invoice_id, c.amount FROM sandbox_charges c JOIN payment_attempts a"
            " ON a.id = c.idempotency_key WHERE c.status = 'succeeded'")):
        taken.setdefault(invoice_id, []).append(amount)
    return taken


def check_invariants(database_url: str, cwd, charges=sandbox_charges) -> dict:
    """The invariants after recovery; returns counts for the test to check its own story.
    `charges(conn)` says what the gateway took per invoice (the sandbox's table by default)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            unsettled = conn.execute(text(
                "SELECT id, status FROM payment_attempts WHERE status IN ('pending', 'unknown')")).all()
            assert unsettled == [], f"attempts left unsettled: {unsettled}"
            pending_refunds = conn.execute(text("SELECT id FROM refunds WHERE status = 'pending'")).all()
            assert pending_refunds == [], f"refunds left pending: {pending_refunds}"
            # Money taken by the gateway, per invoice, against what the invoice records.
            taken = charges(conn)
            rows = conn.execute(text("SELECT id, status, amount_paid FROM invoices")).all()
            for invoice_id, status, amount_paid in rows:
                charged = taken.get(invoice_id, [])
                assert len(charged) <= 1, f"invoice {invoice_id} charged {len(charged)} times"
                if status in ("paid", "refunded", "partially_refunded"):
                    assert sum(charged) == amount_paid, (invoice_id, status, charged, amount_paid)
                else:
                    assert charged == [], f"invoice {invoice_id} is {status} but {charged} was charged"
            refunded = conn.execute(text(
                "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM sandbox_refunds")).one()
            recorded = conn.execute(text(
                "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE status = 'succeeded'")).scalar_one()
            assert refunded[0] == recorded, f"gateway refunded {refunded[0]}, recorded {recorded}"
            # Never granted without money: a lot bought by an invoice needs that invoice paid.
            unpaid_grants = conn.execute(text(
                "SELECT l.id, i.status FROM credit_lots l JOIN invoices i ON i.id = l.invoice_id"
                " WHERE i.status NOT IN ('paid', 'refunded', 'partially_refunded')")).all()
            assert unpaid_grants == [], f"credits granted for unpaid invoices: {unpaid_grants}"
            counts = {
                "top_up_lots": conn.execute(text("SELECT COUNT(*) FROM credit_lots WHERE kind = 'top_up'")).scalar_one(),
                "paid": conn.execute(text("SELECT COUNT(*) FROM invoices WHERE status = 'paid'")).scalar_one(),
                "refunded": refunded[1],
                "invoices": len(rows),
            }
    finally:
        engine.dispose()
    check = subprocess.run(CLI + ["ledger", "check", "--database-url", database_url], cwd=cwd,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    return counts


def recover(database_url: str, cwd, clock_id: str, until: str, sub_id: str | None = None) -> dict | None:
    """Restart unarmed and move the clock past the reconciliation delays: the test clock's run
    reconciles stale attempts and retries pending refunds, as the worker does in real time.
    Returns the subscription as the restarted server sees it."""
    server = Server(database_url, cwd)
    try:
        server.ok("POST", f"/v1/test_clocks/{clock_id}/advance", {"frozen_time": until})
        return server.ok("GET", f"/v1/subscriptions/{sub_id}") if sub_id else None
    finally:
        server.stop()


def setup_subscribed(db) -> tuple[str, str, dict]:
    """A customer on a test clock with a card and a paid monthly Basic subscription, made
    in-process (no fault armed), which is quicker than a server start."""
    ctx = build_context(db)
    settings = Settings(secret_key="fault-secret", test_clocks=True,
                        bootstrap_keys=f"{SERVER_KEY}:server,{SUPPORT_KEY}:support")
    with TestClient(create_app(ctx, settings)) as client:
        client.headers["Authorization"] = f"Bearer {SERVER_KEY}"

        def ok(path, body):
            response = client.post(path, json=body)
            assert response.status_code in (200, 201), response.text
            return response.json()

        clock = ok("/v1/test_clocks", {"frozen_time": START})
        customer = ok("/v1/customers", {"external_id": f"ext_{time.monotonic_ns()}", "email": "ada@example.com",
                                        "test_clock": clock["id"]})
        ok(f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_card_ok"})
        sub = ok("/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"})
    return clock["id"], customer["id"], sub


def plan_lots(database_url: str, sub_id: str) -> int:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT COUNT(*) FROM credit_lots WHERE kind = 'subscription' "
                                     "AND subscription_id = :sub"), {"sub": sub_id}).scalar_one()
    finally:
        engine.dispose()


