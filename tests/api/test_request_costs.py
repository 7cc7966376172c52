"""What keeps a request cheap without changing its answer: the gate's key look-ups shared while
one is under way, and the estimate's read on SQLite done on the event loop (a worker thread
only when SQLite says busy)."""

from __future__ import annotations

import sqlite3
import threading
import time

import anyio
import pytest

from creditflow.api import fastpath, gate
from creditflow.api.fastpath import EstimatePath

from api_kit import SERVER_KEY


def _layer(app, kind):
    """The middleware instance of `kind` in the app's built stack."""
    app.middleware_stack = app.middleware_stack or app.build_middleware_stack()
    layer = app.middleware_stack
    while not isinstance(layer, kind):
        layer = layer.app
    return layer


def test_requests_with_one_key_share_its_look_up(api, monkeypatch):
    the_gate = _layer(api.client.app, gate.Gate)
    looked_up = []
    real = gate.authenticate

    def slow_authenticate(session, secret):
        looked_up.append(threading.get_ident())
        time.sleep(0.2)  # the database is slow: the other requests arrive meanwhile
        return real(session, secret)

    monkeypatch.setattr(gate, "authenticate", slow_authenticate)
    header = f"Bearer {SERVER_KEY}".encode()
    principals = []

    async def main():
        async def one():
            principals.append(await the_gate._authenticate(header))

        async with anyio.create_task_group() as group:
            for _ in range(12):
                group.start_soon(one)

    anyio.run(main)
    assert len(looked_up) == 1
    assert len(principals) == 12 and principals[0] is not None and all(p is principals[0] for p in principals)
    assert not the_gate._lookups
    # Cached by the raw header; a wrong key is looked up and refused, and not cached.
    assert anyio.run(the_gate._authenticate, header) is principals[0] and len(looked_up) == 1
    assert anyio.run(the_gate._authenticate, b"Bearer sk_wrong") is None and len(looked_up) == 2
    assert b"Bearer sk_wrong" not in the_gate._auth_cache


def test_a_failed_look_up_fails_every_request_that_waited_for_it(api, monkeypatch):
    the_gate = _layer(api.client.app, gate.Gate)

    def broken(session, secret):
        time.sleep(0.1)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(gate, "authenticate", broken)
    errors = []

    async def main():
        async def one():
            try:
                await the_gate._authenticate(b"Bearer sk_other_key")
            except RuntimeError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(one)

    anyio.run(main)
    assert len(errors) == 5 and not the_gate._lookups


def _estimate(api, customer_id):
    return api.ok("POST", f"/v1/customers/{customer_id}/credits/estimate",
                  {"feature": "image_fast", "options": {"resolution": "2k", "count": 4}})


def test_the_estimate_reads_on_the_event_loop_on_sqlite(api, monkeypatch):
    customer = api.subscribed()[0]
    hops, readers = [], []
    real_hop, real_reader = fastpath.FastPath.call, EstimatePath._reader

    async def counted_hop(self, customer_id, request):
        hops.append(customer_id)
        return await real_hop(self, customer_id, request)

    def recorded_reader(self):
        readers.append(real_reader(self))
        return readers[-1]

    monkeypatch.setattr(fastpath.FastPath, "call", counted_hop)
    monkeypatch.setattr(EstimatePath, "_reader", recorded_reader)
    first = _estimate(api, customer["id"])
    assert first["amount"] and not hops  # no worker thread
    assert _estimate(api, customer["id"]) == first and not hops  # (a connection per thread that serves)
    reader = readers[0]
    assert reader.execute("PRAGMA query_only").fetchone() == (1,)
    with pytest.raises(sqlite3.OperationalError):
        reader.execute("DELETE FROM customers")

    # SQLite busy for the reader (which never waits): that estimate goes to a worker thread.
    class Busy:
        def cursor(self):
            raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(EstimatePath, "_reader", lambda self: Busy())
    assert _estimate(api, customer["id"]) == first
    assert hops == [customer["id"]]
    # Unknown customers read the same either way.
    monkeypatch.setattr(EstimatePath, "_reader", real_reader)
    missing = api.post("/v1/customers/cus_nobody/credits/estimate", {"feature": "image_fast"})
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "customer"
