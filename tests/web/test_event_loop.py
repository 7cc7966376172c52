"""Page handlers never block the event loop.

The real app (`create_app`: the API with the billing page and the console) is served by
uvicorn with a payment gateway that takes 2 seconds to answer a charge. While a purchase made
through the billing page waits on it, the billing page, the console and the API of the same
process must still answer at once: the handler doing the purchase runs in the thread pool, not
on the event loop. Were it an `async def` doing its database work and gateway call inline, the
whole process would stall for those 2 seconds and every other request below would wait too.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import httpx
import pytest
from web_kit import SECRET_KEY, SERVER_KEY, TIMEOUT, ServerThread, WebEnv, make_staff, utc

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.kit.clock import FixedClock
from creditflow.payment.sandbox import SandboxGateway

GATEWAY_SECONDS = 2.0  # how long the slow gateway takes to answer a charge
PROMPT_SECONDS = 1.0  # what every other request must answer within meanwhile
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class SlowGateway(SandboxGateway):
    """The sandbox gateway, answering charges `delay` seconds late (0 until the test arms it).

    `charging` is set when a charge starts waiting; `answered` once it has waited."""

    def __init__(self, db):
        super().__init__(db)
        self.delay = 0.0
        self.charging = threading.Event()
        self.answered = threading.Event()

    def charge(self, request):
        if self.delay:
            self.charging.set()
            time.sleep(self.delay)
            self.answered.set()
        return super().charge(request)


@dataclass
class Served:
    env: WebEnv
    gateway: SlowGateway

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.env.base_url, timeout=TIMEOUT, **kwargs)

    def get(self, path: str, **kwargs) -> httpx.Response:
        """One GET from a client of its own (`cookies`, `headers` as given)."""
        with self.client(**kwargs) as client:
            return client.get(path)


@pytest.fixture
def served(request):
    """The app on SQLite or PostgreSQL (the test's `backend`), with the slow gateway."""
    database = request.getfixturevalue("pg_db" if request.node.callspec.params["backend"] == "postgres"
                                       else "sqlite_db")
    wall = FixedClock(utc(2026, 1, 31, 10))
    gateway = SlowGateway(database)
    ctx = Context(db=database, catalog=load_catalog(), gateway=gateway, clock=wall)
    settings = replace(Settings(), secret_key=SECRET_KEY, test_clocks=True, bootstrap_keys=f"{SERVER_KEY}:server")
    with ServerThread(create_app(ctx, settings)) as server, server.api_client() as http:
        yield Served(WebEnv(ctx=ctx, base_url=server.url, http=http, wall=wall), gateway)


def _csrf(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return CSRF.search(response.text).group(1)


def _prepare(flow: str, browser: httpx.Client) -> tuple[str, dict, str]:
    """Everything up to the purchase's last step: (the URL to POST, its form, the success
    message the page then shows)."""
    if flow == "top_up":
        review = browser.get("/billing/credits/buy/review", params={"bundle": "credits_1000"})
        reference = re.search(r'name="reference" value="([^"]+)"', review.text).group(1)
        return ("/billing/credits/buy", {"csrf_token": _csrf(review), "bundle": "credits_1000",
                                         "reference": reference}, "Added 1,000 credits. We charged")
    if flow == "upgrade":
        csrf = _csrf(browser.get("/billing/change", params={"plan": "ultimate", "term": "monthly"}))
        quoted = browser.post("/billing/change/quote", data={"csrf_token": csrf, "plan": "ultimate",
                                                             "term": "monthly", "timing": "immediate"})
        assert quoted.status_code == 303, quoted.text
        quote = quoted.headers["location"].rsplit("/", 1)[1]
        return ("/billing/change/confirm", {"csrf_token": csrf, "quote": quote},
                "now on Ultimate (monthly). We charged")
    assert flow == "subscribe"
    csrf = _csrf(browser.get("/billing/subscribe", params={"plan": "standard", "term": "monthly"}))
    return ("/billing/subscribe", {"csrf_token": csrf, "plan": "standard", "term": "monthly"},
            "Welcome to Standard!")


def _console(served: Served) -> httpx.Client:
    """A console client, signed in."""
    username, password = make_staff(served.env)
    console = served.client()
    csrf = _csrf(console.get("/console/login"))
    signed_in = console.post("/console/login", data={"csrf_token": csrf, "username": username,
                                                     "password": password})
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/console"), signed_in.text
    return console


@pytest.mark.parametrize("flow, backend", [
    ("top_up", "sqlite"),
    ("upgrade", "sqlite"),
    ("subscribe", "sqlite"),
    pytest.param("top_up", "postgres", marks=pytest.mark.postgres),
])
def test_a_purchase_waiting_on_the_gateway_holds_up_no_other_page_or_api_request(served: Served, flow, backend):
    env = served.env
    shopper = env.shopper(utc(2026, 1, 31, 10), plan=None if flow == "subscribe" else "standard")
    browser = served.client(follow_redirects=False)
    opened = browser.get(shopper.portal_url())
    assert (opened.status_code, opened.headers["location"]) == (303, "/billing"), opened.text
    console = _console(served)
    action, form, success = _prepare(flow, browser)

    # The other requests, each from a client of its own: the customer's billing page, the
    # console, the health check and an authenticated API read.
    page_cookies, console_cookies = dict(browser.cookies), dict(console.cookies)
    others = {
        "billing page": lambda: served.get("/billing", cookies=page_cookies),
        "console": lambda: served.get("/console", cookies=console_cookies),
        "healthz": lambda: served.get("/healthz"),
        "API read": lambda: served.get(f"/v1/customers/{shopper.id}",
                                       headers={"Authorization": f"Bearer {SERVER_KEY}"}),
    }
    for name, request in others.items():  # once before, so that nothing measured is a first time
        assert request().status_code == 200, name

    def timed(request) -> tuple[float, httpx.Response]:
        started = time.perf_counter()
        response = request()
        return time.perf_counter() - started, response

    # What earlier tests left is collected now, not in a full collection that would pause the
    # whole process (server included) while the requests below are timed.
    gc.collect()
    served.gateway.delay = GATEWAY_SECONDS
    with ThreadPoolExecutor(max_workers=1 + len(others)) as pool:
        purchase = pool.submit(timed, lambda: browser.post(action, data=form))
        assert served.gateway.charging.wait(15), "the purchase never reached the gateway"
        answers = {name: pool.submit(timed, request) for name, request in others.items()}
        answered = {name: future.result(timeout=30) for name, future in answers.items()}
        overlapped = not served.gateway.answered.is_set()
        purchase_seconds, bought = purchase.result(timeout=30)

    for name, (seconds, response) in answered.items():
        assert response.status_code == 200, (name, response.text[:300])
        assert seconds < PROMPT_SECONDS, f"{name} took {seconds:.2f}s while the purchase waited on the gateway"
    assert overlapped, "the gateway answered before the other requests did: they were not measured while it waited"
    assert "Billing and subscription" in answered["billing page"][1].text
    assert "Find a customer" in answered["console"][1].text
    assert answered["API read"][1].json()["id"] == shopper.id

    # The purchase itself did wait on the slow gateway, and went through.
    assert purchase_seconds >= GATEWAY_SECONDS, f"the purchase took only {purchase_seconds:.2f}s"
    assert (bought.status_code, bought.headers["location"]) == (303, "/billing"), bought.text
    assert success in browser.get("/billing").text  # the one-time message the redirect carried
    browser.close()
    console.close()
