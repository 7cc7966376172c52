"""Harness for the browser tests: the real app (`create_app`, the API with the billing page and
the console) served by uvicorn on a free port, Debian's Chromium driven by Playwright, and
customers living on test clocks so that every date on the page is exact.

Portal links are requested from the API over HTTP, as the host app's backend would; the
engine's services are called directly only to set the scene (a subscription, a card that
declines, time passing).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page, expect

from creditflow.customer.service import create_customer, create_test_clock
from creditflow.purchase.payment_method import set_payment_method
from creditflow.kit.clock import FixedClock
from creditflow.purchase.subscribe import subscribe
from creditflow.worker.testclock import advance_test_clock

SERVER_KEY = "sk_web_test_server_0123456789"
SECRET_KEY = "web-test-secret"
# How long a test's HTTP client waits for an answer (httpx's default is 5 s): these tests check
# what comes back, not how fast; a loaded machine may take longer, and must not fail them.
TIMEOUT = 30.0
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


# Runs a browser test on PostgreSQL as well as on SQLite (see conftest's `env`).
both_backends = pytest.mark.parametrize(
    "env", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


class ServerThread:
    """uvicorn serving an app from a thread of the test process, on a free port."""

    def __init__(self, app):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api_client(self) -> httpx.Client:
        """A client of the app's API, with the server key, as the host app's backend calls it."""
        return httpx.Client(base_url=self.url, timeout=TIMEOUT, headers={"Authorization": f"Bearer {SERVER_KEY}"})

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class Shopper:
    """A customer on their own test clock."""

    env: "WebEnv"
    id: str
    clock_id: str
    email: str

    def advance(self, to: datetime) -> None:
        advance_test_clock(self.env.ctx, self.clock_id, to)

    def pay_with(self, token: str) -> None:
        set_payment_method(self.env.ctx, self.id, token)

    def subscribe(self, plan: str = "standard", term: str = "monthly"):
        return subscribe(self.env.ctx, self.id, plan, term)

    def portal_url(self, return_url: str | None = "https://app.example.com/account") -> str:
        body = {"customer": self.id, **({"return_url": return_url} if return_url else {})}
        response = self.env.http.post("/v1/portal_sessions", json=body,
                                      headers={"Idempotency-Key": uuid.uuid4().hex})
        assert response.status_code == 201, response.text
        return response.json()["url"]

    def open(self, page: Page) -> Page:
        """Open the billing page through a fresh portal link, as the host app would."""
        page.goto(self.portal_url())
        expect(page.get_by_role("heading", name="Billing and subscription")).to_be_visible()
        return page


@dataclass
class WebEnv:
    ctx: object
    base_url: str
    http: httpx.Client
    wall: FixedClock  # real time as the server sees it (portal links live on it)

    def shopper(self, start: datetime = utc(2026, 1, 31, 10), *, plan: str | None = "standard",
                term: str = "monthly", payment_method: str | None = "pm_card_ok", name: str | None = None) -> Shopper:
        tag = uuid.uuid4().hex[:8]
        email = f"shopper-{tag}@example.com"
        with self.ctx.db.transaction() as session:
            clock_id = create_test_clock(session, start, now=start).id
            customer_id = create_customer(self.ctx, session, external_id=f"web-{tag}", email=email,
                                          name=name or f"Shopper {tag}", test_clock=clock_id).id
        shopper = Shopper(self, customer_id, clock_id, email)
        if payment_method:
            shopper.pay_with(payment_method)
        if plan:
            shopper.subscribe(plan, term)
        return shopper

    def move_wall(self, by: timedelta) -> None:
        self.wall.set(self.wall.now() + by)


def shot(page: Page, name: str) -> None:
    """Screenshot the page (desktop and phone) and check what every page must do: every control
    has a label, and nothing is wider than a phone screen."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert_labelled(page)
    assert_forms_protected(page)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(PHONE)
    try:
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: the page is {overflow}px wider than a phone screen"
        page.screenshot(path=str(SCREENSHOTS / f"{name}--phone.png"), full_page=True)
    finally:
        page.set_viewport_size(DESKTOP)


UNLABELLED_JS = """
() => {
  const name = (el) => {
    if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return true;
    if (el.labels && el.labels.length && [...el.labels].some(l => l.textContent.trim())) return true;
    if ((el.tagName === 'BUTTON' || el.tagName === 'A') && el.textContent.trim()) return true;
    return false;
  };
  return [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]')]
    .filter(el => !name(el)).map(el => el.outerHTML.slice(0, 120));
}
"""


def assert_labelled(page: Page) -> None:
    unlabelled = page.evaluate(UNLABELLED_JS)
    assert unlabelled == [], f"controls without a label on {page.url}: {unlabelled}"


def assert_forms_protected(page: Page) -> None:
    """Every form that posts carries a CSRF token."""
    bare = page.evaluate("""() => [...document.querySelectorAll('form')]
        .filter(f => f.method.toLowerCase() === 'post')
        .filter(f => !(f.querySelector('input[name=csrf_token]') || {}).value)
        .map(f => f.action)""")
    assert bare == [], f"forms without a CSRF token on {page.url}: {bare}"


def flash(page: Page):
    return page.locator(".flash")


def make_staff(env: WebEnv, role: str = "support", password: str = "correct horse battery") -> tuple[str, str]:
    """A console user, created through the service (as CREDITFLOW_SUPPORT_USERS would)."""
    from creditflow.support.service import create_support_user

    username = f"{role}-{uuid.uuid4().hex[:6]}"
    with env.ctx.db.transaction() as session:
        create_support_user(session, username=username, password=password, role=role, now=env.wall.now())
    return username, password


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Find a customer")).to_be_visible()
