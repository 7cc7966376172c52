"""Events through the API, and webhook deliveries to a real HTTP receiver on a local port."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from api_kit import assert_error

from creditflow.events.delivery import deliver_due, retry_delay
from creditflow.events.models import WebhookDelivery
from creditflow.worker.jobs import JOBS


class Receiver:
    """A webhook receiver: verifies each signature, records what came, and answers with the
    next status of `script` (then 200)."""

    def __init__(self):
        self.secret: str | None = None
        self.script: list[int] = []
        self.received: list[dict] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers["Creditflow-Signature"]
                parts = dict(item.split("=", 1) for item in header.split(","))
                expected = hmac.new(receiver.secret.encode(), f"{parts['t']}.".encode() + body,
                                    hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, parts["v1"]):
                    receiver.bad_signatures += 1
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.received.append({"event": json.loads(body), "t": int(parts["t"]), "status": status})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def types(self, customer: str | None = None, status: int | None = None) -> list[str]:
        return [r["event"]["type"] for r in self.received
                if (customer is None or r["event"]["customer"] == customer) and (status is None or r["status"] == status)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def _endpoint(api, receiver, **fields):
    endpoint = api.ok("POST", "/v1/webhook_endpoints", {"url": receiver.url, **fields})
    receiver.secret = endpoint["secret"]
    return endpoint


def test_events_are_listed_by_customer_and_type(api):
    customer, sub = api.subscribed()
    other = api.customer()
    events = api.ok("GET", f"/v1/events?customer={customer['id']}")["data"]
    types = [e["type"] for e in events]
    assert types[0] == "customer.created" and "subscription.created" in types and "invoice.paid" in types
    assert all(e["object"] == "event" and e["id"].startswith("evt_") and e["created_at"].endswith("Z")
               for e in events)
    created = api.ok("GET", f"/v1/events?customer={customer['id']}&type=subscription.created")["data"]
    assert len(created) == 1 and created[0]["data"]["subscription"] == sub["id"]
    everyone = api.ok("GET", "/v1/events?type=customer.created")["data"]
    assert [e["data"]["customer"] for e in everyone] == [customer["id"], other["id"]]
    page = api.ok("GET", f"/v1/events?customer={customer['id']}&limit=1&starting_after={events[0]['id']}")
    assert page["data"] == [events[1]] and page["has_more"] is True
    assert_error(api.get("/v1/events?starting_after=evt_nope"), 404, "not_found", "starting_after")


def test_webhook_endpoint_registration(api):
    endpoint = api.ok("POST", "/v1/webhook_endpoints", {"url": "http://localhost:9/hook",
                                                        "events": ["invoice.paid", "customer.created"]})
    assert endpoint["id"].startswith("we_") and endpoint["secret"].startswith("whsec_")
    assert endpoint["events"] == ["customer.created", "invoice.paid"]
    listed = api.ok("GET", "/v1/webhook_endpoints")["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    for bad in ("ftp://example.com/x", "not a url", "http://", "http://exa mple.com/"):
        assert_error(api.post("/v1/webhook_endpoints", {"url": bad}), 422, "invalid_request", "url")
    assert_error(api.post("/v1/webhook_endpoints", {"url": "http://x.test/", "events": ["Bad Type"]}), 422,
                 "invalid_request", "events.0")
    assert api.delete(f"/v1/webhook_endpoints/{endpoint['id']}").status_code == 204
    assert_error(api.delete(f"/v1/webhook_endpoints/{endpoint['id']}"), 404, "not_found")


def test_operator_can_deny_address_ranges(sqlite_db):
    import ipaddress

    from api_kit import make_api

    api = make_api(sqlite_db, webhook_deny=(ipaddress.ip_network("127.0.0.0/8"),))
    assert_error(api.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:8080/x"}), 422, "invalid_request", "url")
    assert api.post("/v1/webhook_endpoints", {"url": "http://192.0.2.1/x"}).status_code == 201


def test_deliveries_are_signed_retried_after_500_and_in_order_per_customer(any_api, receiver):
    api = any_api
    _endpoint(api, receiver)
    first = api.customer(payment_method=None)
    second = api.customer(payment_method=None)
    now = datetime.now(timezone.utc).replace(microsecond=0)

    receiver.script = [500]  # the first delivery (first's customer.created) fails
    deliver_due(api.ctx, now)
    assert receiver.types(first["id"]) == ["customer.created"]
    assert receiver.types(second["id"]) == ["customer.created"]
    assert receiver.bad_signatures == 0
    assert receiver.received[0]["t"] == int(now.timestamp())
    event = receiver.received[0]["event"]
    assert event["object"] == "event" and event["id"].startswith("evt_") and event["data"]["customer"] == first["id"]

    # The next event of the first customer waits behind the failed one; the retry comes after the backoff.
    api.ok("POST", f"/v1/customers/{first['id']}/payment_method", {"token": "pm_card_ok"})
    api.ok("POST", "/v1/subscriptions", {"customer": first["id"], "plan": "standard", "term": "monthly"})
    deliver_due(api.ctx, now + timedelta(seconds=1))
    assert receiver.types(first["id"]) == ["customer.created"]

    deliver_due(api.ctx, now + retry_delay(1))
    delivered = receiver.types(first["id"], status=200)
    assert delivered[0] == "customer.created" and receiver.received[2]["event"]["id"] == event["id"]
    assert set(delivered[1:]) >= {"invoice.paid", "subscription.created", "credits.granted"}
    seqs = [r["event"]["id"] for r in receiver.received if r["event"]["customer"] == first["id"] and r["status"] == 200]
    listed = [e["id"] for e in api.ok("GET", f"/v1/events?customer={first['id']}&limit=100")["data"]]
    assert seqs == listed  # in the order they were recorded
    assert receiver.bad_signatures == 0

    deliver_due(api.ctx, now + timedelta(hours=1))
    assert len(receiver.received) == 2 + len(listed)  # nothing twice once acknowledged


def test_a_delivery_is_given_up_after_three_days_and_the_next_ones_flow(api, receiver):
    _endpoint(api, receiver, events=["customer.created", "invoice.paid"])
    customer = api.customer(payment_method=None)
    now = datetime.now(timezone.utc)
    receiver.script = [500] * 100
    at = now
    while at < now + timedelta(days=3, hours=12):
        deliver_due(api.ctx, at)
        at += timedelta(hours=1)
    attempts = len(receiver.received)
    assert 15 <= attempts <= 40  # exponential, then every 6 hours
    with api.ctx.db.transaction(readonly=True) as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert delivery.status == "failed" and delivery.attempts == attempts
    receiver.script = []
    api.ok("POST", f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_card_ok"})
    api.ok("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "basic", "term": "monthly"})
    deliver_due(api.ctx, at)
    assert receiver.types(status=200) == ["invoice.paid"]  # filtered to the endpoint's types


def test_delivery_is_a_registered_worker_job():
    assert "webhook_delivery" in {job.name for job in JOBS}
