"""The network to Stripe breaks in the middle of a purchase; nothing is charged twice, credits
come iff the money was taken, and the client gets a 402, never a 5xx.

Each test buys through the real API with the Stripe gateway, pointed at localstripe through
`gateway_proxy.FaultProxy`, which breaks the charge request (`POST /v1/payment_intents`) one
way. The answer is 402 `payment_pending` (the gateway cannot know whether Stripe charged);
then the test clock moves past the stale-attempt delay, so the clock's worker run reconciles
the attempt by asking Stripe (through the proxy, which now passes everything). The
invariants are then checked against what localstripe really holds: at most one succeeded
PaymentIntent per invoice, equal to what the invoice records, and credits only for paid
invoices.

`reset`, `500` and `lost` go through a `creditflow serve` process. `slow` needs the
gateway's timeout (30 s in a server, not set from the environment) to pass: it runs the same
API in this process with a gateway whose timeout is 1 s, so the test takes seconds.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.payment.stripe_gateway import StripeGateway
from creditflow.wiring import build_context, stripe_customer_of_attempt
from fault_kit import SERVER_KEY, SUPPORT_KEY, START, Server, check_invariants
from gateway_proxy import STRIPE_KEY, FaultProxy, stripe_charges

TIMEOUT = 1.0  # the in-process gateway's; the proxy's slow answer comes 1 s after it
CHARGE = ("POST", "/v1/payment_intents")
# (database, fault, purchase, whether Stripe took the money): each fault once, on either
# database (the network to the gateway is the same for both), to keep the battery's time.
CASES = [("sqlite", "reset", "top_up", False), ("postgres", "500", "subscribe", False),
         ("sqlite", "slow", "top_up", True), ("postgres", "lost", "subscribe", True)]


class InProcessApi:
    """The API app in this process, its Stripe gateway timing out after TIMEOUT seconds."""

    def __init__(self, db, api_base: str):
        gateway = StripeGateway(STRIPE_KEY, api_base=api_base, customer_for_key=stripe_customer_of_attempt(db),
                                timeout=TIMEOUT)
        settings = Settings(secret_key="fault-secret", test_clocks=True,
                            bootstrap_keys=f"{SERVER_KEY}:server,{SUPPORT_KEY}:support")
        self.client = TestClient(create_app(build_context(db, gateway=gateway), settings))
        self.client.__enter__()

    def call(self, method: str, path: str, json=None, key: str = SERVER_KEY):
        return self.client.request(method, path, json=json, headers={"Authorization": f"Bearer {key}"})

    def stop(self) -> None:
        self.client.__exit__(None, None, None)


def ok(api, method: str, path: str, json=None) -> dict:
    response = api.call(method, path, json)
    assert response.status_code in (200, 201), response.text
    return response.json()


def lots(database_url: str, customer_id: str) -> dict[str, int]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT kind, COUNT(*) FROM credit_lots WHERE customer_id = :c"
                                          " GROUP BY kind"), {"c": customer_id}).all())
    finally:
        engine.dispose()


@pytest.fixture
def backend_db(request):
    """The migrated database named by the case's first parameter."""
    return request.getfixturevalue("pg_db" if request.node.callspec.params["backend"] == "postgres" else "sqlite_db")


@pytest.mark.parametrize(("backend", "fault", "purchase", "charged"), [
    pytest.param(*case, id="-".join(case[:3]), marks=[pytest.mark.postgres] if case[0] == "postgres" else [])
    for case in CASES])
def test_charge_request_broken_by_the_network(backend_db, tmp_path, localstripe_url, stripe_admin, backend, fault,
                                              purchase, charged):
    db = backend_db
    proxy = FaultProxy(localstripe_url, slow_seconds=TIMEOUT + 1)
    if fault == "slow":
        api = InProcessApi(db, proxy.url)
    else:
        api = Server(db.url, tmp_path, args=("--no-worker",), env={
            "CREDITFLOW_GATEWAY": "stripe", "CREDITFLOW_STRIPE_API_KEY": STRIPE_KEY,
            "CREDITFLOW_STRIPE_API_BASE": proxy.url})
    try:
        clock = ok(api, "POST", "/v1/test_clocks", {"frozen_time": START})
        customer = ok(api, "POST", "/v1/customers", {"external_id": f"gw-{fault}", "email": f"{fault}@example.com",
                                                      "test_clock": clock["id"]})
        card = stripe_admin.v1.payment_methods.create(params={
            "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        ok(api, "POST", f"/v1/customers/{customer['id']}/payment_method", {"token": card.id})
        if purchase == "top_up":
            ok(api, "POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"})
        charges_before = proxy.forwarded.count("POST /v1/payment_intents")

        proxy.script(*CHARGE, fault)
        if purchase == "top_up":
            answer = api.call("POST", f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000"})
        else:
            answer = api.call("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "basic",
                                                            "term": "monthly"})
        assert proxy.injected == [f"{fault} POST /v1/payment_intents"]
        assert answer.status_code == 402, answer.text
        assert answer.json()["error"]["code"] == "payment_pending"
        # Stripe received the charge once when it was forwarded, never when it was not, and
        # nothing sent it again.
        assert proxy.forwarded.count("POST /v1/payment_intents") - charges_before == (1 if charged else 0)

        # The clock's worker run, past the stale-attempt delay, asks Stripe and settles.
        ok(api, "POST", f"/v1/test_clocks/{clock['id']}/advance", {"frozen_time": "2026-03-10T10:30:00Z"})
        assert proxy.forwarded.count("POST /v1/payment_intents") - charges_before == (1 if charged else 0)
        subscription = api.call("GET", f"/v1/customers/{customer['id']}/subscription")
    finally:
        api.stop()
        proxy.close()

    counts = check_invariants(db.url, tmp_path, charges=stripe_charges(stripe_admin))
    granted = lots(db.url, customer["id"])
    if purchase == "top_up":  # the subscription's invoice and the top-up's
        assert (counts["invoices"], counts["paid"]) == (2, 2 if charged else 1)
        assert granted.get("top_up", 0) == (1 if charged else 0)
        assert granted.get("subscription", 0) == 1
    else:
        assert (counts["invoices"], counts["paid"]) == (1, 1 if charged else 0)
        assert granted.get("subscription", 0) == (1 if charged else 0)
        # Paid means subscribed; never charged means on Free, free to subscribe again.
        assert subscription.status_code == (200 if charged else 404), subscription.text
        if charged:
            assert (subscription.json()["plan"], subscription.json()["status"]) == ("basic", "active")
