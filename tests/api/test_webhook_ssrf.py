"""Webhook URLs can't reach addresses that are denied: not by spelling an address another way
(IPv4-mapped IPv6, short or decimal IPv4, 0.0.0.0), not by a name that resolves there, and not
by a name that resolved elsewhere when the endpoint was registered. Deliveries go to a real HTTP
listener on this machine, which must receive nothing that was denied."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from api_kit import assert_error, make_api

from creditflow.events.delivery import deliver_due
from creditflow.events.models import WebhookDelivery, WebhookEndpoint
from creditflow.events.service import denied_address, denied_ranges
from creditflow.kit.ids import new_id

OPERATOR_DENY = "127.0.0.0/8,169.254.0.0/16"


class Listener:
    """A local HTTP server on 127.0.0.1 that records every request it gets."""

    def __init__(self):
        self.requests: list[dict] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                listener.requests.append({"path": self.path, "host": self.headers["Host"]})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    listener = Listener()
    yield listener
    listener.close()


def _endpoint_behind_the_check(api, url: str) -> str:
    """An endpoint stored as it could be from before a deny range was set, or under a name that
    resolved elsewhere then: only the delivery's own check stands between it and the address."""
    with api.ctx.db.transaction() as session:
        endpoint = WebhookEndpoint(id=new_id("we"), url=url, secret="whsec_test", events=None, after_seq=0,
                                   created_at=datetime.now(timezone.utc))
        session.add(endpoint)
    return endpoint.id


def _deliveries(api) -> dict[str, WebhookDelivery]:
    with api.ctx.db.transaction(readonly=True) as session:
        return {d.endpoint_id: d for d in session.scalars(select(WebhookDelivery))}


def test_every_spelling_of_a_denied_address_is_refused_at_registration(sqlite_db, listener):
    api = make_api(sqlite_db, webhook_deny=denied_ranges(OPERATOR_DENY))
    port = listener.port
    for url in (f"http://[::ffff:127.0.0.1]:{port}/", "http://[::ffff:169.254.169.254]/",
                f"http://127.0.0.1:{port}/", f"http://127.1:{port}/", f"http://2130706433:{port}/",
                f"http://0x7f.0.0.1:{port}/", f"http://[::ffff:7f00:1]:{port}/", f"http://localhost:{port}/",
                f"http://0.0.0.0:{port}/", f"http://0:{port}/", "http://169.254.169.254/latest/meta-data/",
                "http://[fd00:ec2::254]/", f"http://[::]:{port}/", "http://[fe80::1]/"):
        assert_error(api.post("/v1/webhook_endpoints", {"url": url}), 422, "invalid_request", "url")
    assert api.ok("GET", "/v1/webhook_endpoints")["data"] == []  # nothing was registered
    assert api.post("/v1/webhook_endpoints", {"url": "http://10.1.2.3/x"}).status_code == 201


def test_link_local_metadata_and_this_host_are_denied_without_any_setting(sqlite_db, listener):
    api = make_api(sqlite_db)  # no CREDITFLOW_WEBHOOK_DENY
    for url in (f"http://0.0.0.0:{listener.port}/", f"http://0:{listener.port}/", "http://169.254.169.254/",
                "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/", "http://[::ffff:0.0.0.0]/"):
        assert_error(api.post("/v1/webhook_endpoints", {"url": url}), 422, "invalid_request", "url")
    # Loopback and private ranges stay allowed unless the operator denies them.
    for url in (f"http://127.0.0.1:{listener.port}/", f"http://[::ffff:127.0.0.1]:{listener.port}/",
                "http://10.0.0.5/", "http://192.168.1.10:8080/", "http://[::1]:9/"):
        assert api.post("/v1/webhook_endpoints", {"url": url}).status_code == 201, url


def test_the_sender_checks_every_address_at_send_time_and_the_listener_gets_nothing(sqlite_db, listener):
    api = make_api(sqlite_db)
    port = listener.port
    urls = {"mapped": f"http://[::ffff:127.0.0.1]:{port}/mapped", "name": f"http://localhost:{port}/name",
            "short": f"http://127.1:{port}/short", "this_host": f"http://0.0.0.0:{port}/this-host"}
    ids = {name: _endpoint_behind_the_check(api, url) for name, url in urls.items()}
    api.customer(payment_method=None)

    deliver_due(api.ctx, datetime.now(timezone.utc), denied=denied_ranges(OPERATOR_DENY))

    assert listener.requests == []
    deliveries = _deliveries(api)
    for name, endpoint_id in ids.items():
        delivery = deliveries[endpoint_id]
        assert delivery.status == "pending" and delivery.attempts == 1, name  # retried later, checked again
        assert "an address webhooks may not target" in delivery.last_error, (name, delivery.last_error)


def test_without_the_deny_range_the_same_listener_is_reachable(sqlite_db, listener):
    """The control for the test above: the listener does answer those spellings (except 0.0.0.0,
    which is always denied), so nothing arriving there is the check's doing."""
    api = make_api(sqlite_db)
    port = listener.port
    _endpoint_behind_the_check(api, f"http://[::ffff:127.0.0.1]:{port}/mapped")
    _endpoint_behind_the_check(api, f"http://127.1:{port}/short")
    api.customer(payment_method=None)
    deliver_due(api.ctx, datetime.now(timezone.utc))
    assert sorted(r["path"] for r in listener.requests) == ["/mapped", "/short"]


def test_a_name_with_one_denied_address_among_several_is_refused(sqlite_db, listener):
    api = make_api(sqlite_db)
    _endpoint_behind_the_check(api, f"http://hooks.example.invalid:{listener.port}/x")
    api.customer(payment_method=None)
    answers = {"hooks.example.invalid": ["127.0.0.1", "169.254.169.254"]}

    deliver_due(api.ctx, datetime.now(timezone.utc), resolve=lambda host, port: answers[host])

    assert listener.requests == []
    (delivery,) = _deliveries(api).values()
    assert "169.254.169.254" in delivery.last_error


def test_the_connection_goes_to_the_address_that_was_checked(sqlite_db, listener):
    """The name is resolved once, by the check; the connection uses that address and sends the
    name as Host. (The system resolver doesn't know .invalid names: had the HTTP client resolved
    the name again, as a rebinding attack needs, the delivery would have failed.)"""
    api = make_api(sqlite_db)
    _endpoint_behind_the_check(api, f"http://hooks.example.invalid:{listener.port}/pinned")
    api.customer(payment_method=None)
    looked_up = []

    def resolve(host, port):
        looked_up.append(host)
        return ["127.0.0.1"]

    deliver_due(api.ctx, datetime.now(timezone.utc), resolve=resolve)

    assert listener.requests == [{"path": "/pinned", "host": f"hooks.example.invalid:{listener.port}"}]
    assert looked_up == ["hooks.example.invalid"]
    (delivery,) = _deliveries(api).values()
    assert delivery.status == "delivered"


def test_denied_address_normalises_ipv6_forms():
    denied = denied_ranges("127.0.0.0/8,10.0.0.0/8")
    for address in ("127.0.0.1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::127.0.0.1", "2002:7f00:1::1",
                    "64:ff9b::7f00:1", "::ffff:10.9.8.7", "169.254.169.254", "::ffff:169.254.169.254",
                    "0.0.0.0", "0.1.2.3", "::", "fe80::1%eth0", "fd00:ec2::254"):
        assert denied_address(address, denied), address
    for address in ("::1", "192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "fd00:1::1"):
        assert not denied_address(address, denied), address


def test_a_malformed_deny_range_names_the_setting():
    with pytest.raises(ValueError, match="CREDITFLOW_WEBHOOK_DENY.*10.0.0.0/33"):
        denied_ranges("10.0.0.0/8,10.0.0.0/33")
