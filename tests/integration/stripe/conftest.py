"""The Stripe gateway against localstripe (a fake Stripe API server, from PyPI).

    localstripe      session: a localstripe process on a free local port; its base URL
    stripe_admin     a `stripe.StripeClient` on it, to create cards and inspect what Stripe saw
    stripe_story     a factory of customers on the real engine with the Stripe gateway, on a
                     test clock (or on real time with `clock=False`), on SQLite and PostgreSQL

localstripe keeps every object in memory for the whole session; tests only ever look at the
objects of their own Stripe customers. It knows nothing of idempotency keys, so a test that sees
exactly one PaymentIntent proves that creditflow sent exactly one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
import stripe
from stripe_kit import API_KEY, CARD_OK, StripeStory


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(process: subprocess.Popen, url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if requests.get(f"{url}/v1/customers", params={"limit": 1},
                            headers={"Authorization": f"Bearer {API_KEY}"}, timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory) -> Iterator[str]:
    """`python -m localstripe --port N --from-scratch`, started once, stopped at the end."""
    workdir = tmp_path_factory.mktemp("localstripe")
    log_path = workdir / "localstripe.log"
    for _ in range(3):  # another process may take the free port before localstripe binds it
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
                stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        if _wait_until_up(process, url, time.monotonic() + 30):
            break
        process.kill()
        process.wait()
    else:
        pytest.fail(f"localstripe did not start; its log:\n{log_path.read_text()[-3000:]}", pytrace=False)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def stripe_admin(localstripe) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": localstripe}, max_network_retries=0)


@pytest.fixture
def stripe_story(db, stripe_admin, localstripe):
    def make(start: datetime, *, card: str | None = CARD_OK, clock: bool = True) -> StripeStory:
        return StripeStory(db, stripe_admin, localstripe, start, card=card, clock=clock)

    return make
