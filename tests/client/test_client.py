"""`creditflow.client` against a real server: every area, errors as exceptions, retries that
never do anything twice, the async client, and webhook signatures."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from creditflow.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PaymentRequiredError,
    WebhookSignatureError,
    verify_webhook,
)
from creditflow.events.service import sign


def test_a_customers_life_through_the_client(server, keys):
    server_key, support_key = keys
    with Client(server.url, server_key) as cf, Client(server.url, support_key) as support:
        clock = cf.operations.create_test_clock(frozen_time="2026-03-10T10:00:00Z")
        customer = cf.customers.create(external_id="ada", email="ada@example.com", test_clock=clock["id"])
        assert cf.customers.get(customer["id"]) == customer
        assert cf.customers.list(external_id="ada")["data"] == [customer]
        card = cf.customers.set_payment_method(customer["id"], token="pm_card_ok")
        assert (card["brand"], card["last4"]) == ("visa", "4242")
        assert cf.customers.get_payment_method(customer["id"]) == card
        updated = cf.customers.update(customer["id"], name="Ada GmbH", country="DE",
                                      address={"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"})
        assert (updated["name"], updated["country"], updated["address"]["city"]) == ("Ada GmbH", "DE", "Berlin")
        assert customer["language"] is None
        assert cf.customers.update(customer["id"], language="de")["language"] == "de"

        sub = cf.subscriptions.create(customer=customer["id"], plan="standard", term="monthly")
        assert sub["status"] == "active" and cf.subscriptions.of_customer(customer["id"]) == sub
        quote = cf.subscriptions.preview_change(sub["id"], plan="ultimate", term="monthly")
        changed = cf.subscriptions.change(sub["id"], plan="ultimate", term="monthly", quote=quote["id"])
        assert changed["plan"] == "ultimate"
        assert cf.subscriptions.cancel(sub["id"])["cancel_at_period_end"] is True
        assert cf.subscriptions.resume(sub["id"])["cancel_at_period_end"] is False

        spent = cf.credits.spend(customer["id"], amount="12.5", feature="standard_models", reference="job-1")
        assert spent["amount"] == "12.5"
        held = cf.credits.hold(customer["id"], amount=30, feature="standard_models", reference="job-2")
        assert cf.credits.get_hold(held["id"])["status"] == "held"
        assert cf.credits.settle(held["id"], amount="10")["settled_amount"] == "10"
        assert cf.credits.refund(customer["id"], reference="job-1")["amount"] == "12.5"
        cf.credits.top_up(customer["id"], bundle="credits_1000")
        granted = support.credits.grant(customer["id"], amount="5", reason="sorry for the outage")
        balance = cf.credits.balance(customer["id"])
        assert granted["id"] in {lot["id"] for lot in balance["lots"]}
        entries = cf.credits.ledger(customer["id"], limit=100)["data"]
        assert [e["kind"] for e in entries].count("spend") == 1

        invoices = cf.invoices.list(customer=customer["id"])["data"]
        assert [i["purpose"] for i in invoices] == ["subscription_create", "plan_change", "top_up"]
        assert cf.invoices.get(invoices[0]["id"]) == invoices[0]
        assert (invoices[0]["bill_to"]["name"], invoices[0]["tax"], invoices[0]["total"]) == ("Ada GmbH", 570, 3570)
        assert cf.invoices.refund_eligibility(invoices[2]["id"])["object"] == "refund_eligibility"
        refund = support.invoices.refund(invoice=invoices[2]["id"], reason="bought by mistake")
        assert refund["status"] == "succeeded"

        types = [e["type"] for e in cf.events.list(customer=customer["id"], limit=100)["data"]]
        assert "credits.spent" in types and "refund.created" in types
        endpoint = cf.events.create_webhook_endpoint(url="http://127.0.0.1:9/hook", events=["invoice.paid"])
        assert endpoint["secret"] and endpoint["id"] in {e["id"] for e in cf.events.list_webhook_endpoints()["data"]}
        assert cf.events.delete_webhook_endpoint(endpoint["id"]) is None

        assert cf.operations.create_portal_session(customer=customer["id"])["url"].startswith("http")
        assert cf.operations.advance_test_clock(clock["id"], frozen_time="2026-04-10T10:00:00Z")["frozen_time"] == \
            "2026-04-10T10:00:00Z"
        assert cf.operations.get_test_clock(clock["id"])["frozen_time"] == "2026-04-10T10:00:00Z"
        assert {p["code"] for p in cf.operations.catalog()["plans"]} >= {"standard", "ultimate"}


def test_errors_are_exceptions_with_the_apis_code_and_param(server, keys):
    with Client(server.url, keys[0]) as cf:
        with pytest.raises(NotFoundError) as missing:
            cf.customers.get("cus_nope")
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        with pytest.raises(InvalidRequestError) as bad:
            cf.customers.create(external_id="x", email="not-an-email")
        assert (bad.value.status, bad.value.param) == (422, "email")
        customer = cf.customers.create(external_id="bo", email="bo@example.com")
        with pytest.raises(PaymentRequiredError) as short:
            cf.credits.spend(customer["id"], amount="1000", feature="standard_models", reference="big")
        assert short.value.code == "insufficient_credits"
        with pytest.raises(ConflictError) as reused:
            cf.credits.spend(customer["id"], amount="1", feature="standard_models", reference="r",
                             idempotency_key="same")
            cf.credits.spend(customer["id"], amount="2", feature="standard_models", reference="r2",
                             idempotency_key="same")
        assert reused.value.code == "idempotency_key_reused"
    with Client(server.url, "sk_wrong") as stranger, pytest.raises(AuthenticationError):
        stranger.customers.list()


class _LoseAnswers(httpx.HTTPTransport):
    """Sends each request, then drops the answer of the first `n` (as a network cut would,
    after the server did the work)."""

    def __init__(self, n: int):
        super().__init__()
        self.left, self.seen = n, []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.headers.get("Idempotency-Key"))
        response = super().handle_request(request)
        response.read()
        if self.left:
            self.left -= 1
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_a_write_whose_answer_was_lost_is_retried_once_with_the_same_key_and_done_once(server, keys):
    with Client(server.url, keys[0]) as cf:
        customer = cf.customers.create(external_id="cy", email="cy@example.com")
    lossy = _LoseAnswers(n=2)
    with Client(server.url, keys[0], http=httpx.Client(transport=lossy)) as cf:
        spent = cf.credits.spend(customer["id"], amount="7", feature="standard_models", reference="job-1")
        assert len(lossy.seen) == 3 and len(set(lossy.seen)) == 1 and lossy.seen[0].startswith("cf-")
        assert spent["balance"] == "93"
        assert cf.credits.balance(customer["id"])["available"] == "93"  # spent once, not three times
    with Client(server.url, keys[0], http=httpx.Client(transport=_LoseAnswers(n=3)), max_retries=2) as cf:
        with pytest.raises(Exception) as gave_up:
            cf.credits.spend(customer["id"], amount="1", feature="standard_models", reference="job-2")
        assert type(gave_up.value).__name__ == "APIConnectionError"


def test_the_async_client_does_the_same(server, keys):
    async def story():
        async with AsyncClient(server.url, keys[0]) as cf:
            customer = await cf.customers.create(external_id="di", email="di@example.com")
            spends = await asyncio.gather(*[
                cf.credits.spend(customer["id"], amount="1.5", feature="standard_models", reference=f"job-{n}")
                for n in range(4)])
            assert sorted(s["reference"] for s in spends) == [f"job-{n}" for n in range(4)]
            assert (await cf.credits.balance(customer["id"]))["available"] == "94"
            with pytest.raises(NotFoundError):
                await cf.credits.get_hold("hold_nope")

    asyncio.run(story())


def test_webhook_signatures_are_checked():
    body = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid"}).encode()
    now = int(time.time())
    header = sign("whsec_test", now, body)  # as the server signs its deliveries
    assert verify_webhook(body, header, "whsec_test")["id"] == "evt_1"
    for payload, signature, secret in [(body + b" ", header, "whsec_test"), (body, header, "whsec_other"),
                                       (body, "t=1,v1=nothex", "whsec_test"), (body, "garbage", "whsec_test")]:
        with pytest.raises(WebhookSignatureError):
            verify_webhook(payload, signature, secret)
    with pytest.raises(WebhookSignatureError, match="old"):
        verify_webhook(body, sign("whsec_test", now - 3600, body), "whsec_test")
