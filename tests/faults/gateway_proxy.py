"""Gateway faults for the battery: localstripe (a fake Stripe API from PyPI) behind a proxy that
breaks the requests a test scripts.

    proxy = FaultProxy(localstripe_url)     # a thread; point CREDITFLOW_STRIPE_API_BASE at proxy.url
    proxy.script("POST", "/v1/payment_intents", "lost")

The next matching request gets the fault, the others pass through untouched:

    reset   the connection is reset (RST) before anything is forwarded: Stripe never saw it
    500     a Stripe-shaped 500 answer, nothing forwarded
    slow    forwarded (Stripe acts on it), answered `slow_seconds` later, past the client's timeout
    lost    forwarded (Stripe acts on it), then the connection is reset instead of answered

Stdlib only (http.server, http.client), one thread per connection.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx

FAULTS = ("reset", "500", "slow", "lost")
STRIPE_KEY = "sk_test_creditflow_faults"


class FaultProxy:
    def __init__(self, upstream: str, *, slow_seconds: float = 2.0):
        target = urlsplit(upstream)
        self.upstream = (target.hostname, target.port)
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._script: list[tuple[str, str, str]] = []
        self.injected: list[str] = []  # "<fault> <METHOD> <path>", in order
        self.forwarded: list[str] = []  # "<METHOD> <path>" of every request Stripe received
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def script(self, method: str, path: str, fault: str) -> None:
        """The next `method path` request (path without its query) gets `fault`."""
        assert fault in FAULTS, fault
        with self._lock:
            self._script.append((method.upper(), path, fault))

    def pending(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._script)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, method: str, path: str) -> str | None:
        with self._lock:
            for i, (m, p, fault) in enumerate(self._script):
                if m == method and p == path:
                    del self._script[i]
                    self.injected.append(f"{fault} {method} {path}")
                    return fault
        return None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: a reset hits only that one

            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                fault = proxy._take(self.command, path)
                if fault == "reset":
                    return self._reset()
                if fault == "500":
                    return self._answer(500, {"Content-Type": "application/json"}, json.dumps(
                        {"error": {"type": "api_error", "message": "injected server error"}}).encode())
                status, headers, answer = self._forward(body)
                if fault == "lost":
                    return self._reset()
                if fault == "slow":
                    time.sleep(proxy.slow_seconds)
                self._answer(status, headers, answer)

            do_GET = do_POST = do_DELETE = _any

            def _forward(self, body: bytes):
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    answer = response.read()
                    with proxy._lock:
                        proxy.forwarded.append(f"{self.command} {urlsplit(self.path).path}")
                    kept = {k: v for k, v in response.getheaders()
                            if k.lower() not in ("transfer-encoding", "connection", "content-length")}
                    return response.status, kept, answer
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: dict, body: bytes) -> None:
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up waiting (the slow fault)
                    self.close_connection = True

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends RST, as a dropped connection in a network would.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def finish(self):
                try:
                    super().finish()
                except (OSError, ValueError):  # the socket was reset on purpose
                    pass

        return Handler


@contextmanager
def localstripe(workdir) -> Iterator[str]:
    """A `python -m localstripe` process on a free port; yields its base URL."""
    log_path = workdir / "localstripe.log"
    for _ in range(3):  # another process may take the free port before localstripe binds it
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
                                       stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        if _up(process, url, time.monotonic() + 30):
            break
        process.kill()
        process.wait()
    else:
        raise AssertionError(f"localstripe did not start: {log_path.read_text()[-3000:]}")
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _up(process: subprocess.Popen, url: str, deadline: float) -> bool:
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/v1/customers?limit=1", timeout=1,
                         headers={"Authorization": f"Bearer {STRIPE_KEY}"}).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def stripe_charges(admin):
    """For `fault_kit.check_invariants`: what localstripe took, per invoice, found by the
    attempt id each PaymentIntent carries in its metadata (localstripe knows nothing of
    idempotency keys, so a second request would be a second PaymentIntent)."""
    from sqlalchemy import text

    def taken(conn) -> dict[str, list[int]]:
        invoice_of = dict(conn.execute(text("SELECT id, invoice_id FROM payment_attempts")).all())
        found: dict[str, list[int]] = {}
        for intent in admin.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter():
            try:
                attempt = intent.metadata["creditflow_attempt"]
            except (KeyError, TypeError):
                continue
            if attempt in invoice_of and intent.status == "succeeded":
                found.setdefault(invoice_of[attempt], []).append(intent.amount)
        return found

    return taken
