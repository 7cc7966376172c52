"""The example host apps of examples/ against a real creditflow server (uvicorn on a free local
port, SQLite), as tests/client does; each example is served by uvicorn too, so creditflow's
worker can deliver webhooks to it."""

from __future__ import annotations

import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "tests" / "api"))

from api_kit import SERVER_KEY, SETTINGS, LiveServer  # noqa: E402

from creditflow.api.app import create_app  # noqa: E402
from creditflow.client import Client  # noqa: E402
from creditflow.kit.clock import FixedClock  # noqa: E402
from creditflow.wiring import build_context  # noqa: E402


@pytest.fixture
def server(sqlite_db):
    """creditflow, on a clock frozen at the start of the test: today's free credits can't reset
    under it at midnight (webhook signatures, stamped with that time, stay fresh)."""
    ctx = build_context(sqlite_db, clock=FixedClock(datetime.now(timezone.utc)))
    with LiveServer(create_app(ctx, SETTINGS)) as live:
        live.ctx = ctx
        yield live


@pytest.fixture
def image_generator(server):
    """The image generator example, configured as its README says: creditflow's URL and a server
    key, and the secret of a webhook endpoint registered (POST /v1/webhook_endpoints) for its
    `/webhooks/creditflow`. Yields (its URL, the endpoint)."""
    from image_generator.app import Settings
    from image_generator.app import create_app as create_example

    port = _free_port()
    with Client(server.url, SERVER_KEY) as cf:
        endpoint = cf.events.create_webhook_endpoint(url=f"http://127.0.0.1:{port}/webhooks/creditflow")
    settings = Settings(creditflow_url=server.url, api_key=SERVER_KEY, webhook_secret=endpoint["secret"])
    with LiveServer(create_example(settings), port) as example:  # the port is known first: the webhook URL names it
        yield example.url, endpoint


@pytest.fixture(scope="module")
def chromium():
    """Chromium through Playwright; skipped without it, unless CREDITFLOW_REQUIRE_BROWSER=1 (CI)."""
    path = os.environ.get("CREDITFLOW_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(path):
        reason = f"no Chromium at {path} (scripts/install-browser.sh installs it)"
        if os.environ.get("CREDITFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (CREDITFLOW_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
