"""The credit spend's own path (api/fastpath.py) answers exactly as the FastAPI route does.

A body sent as `application/merge-patch+json` is JSON to the route but not taken by the spend
path, which is how these tests reach the route for the same request."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from api_kit import assert_error
from creditflow.api import fastpath
from creditflow.api.routes import credits as credit_routes

ROUTE_ONLY = {"Content-Type": "application/merge-patch+json"}


def _spend(api, customer_id, body, headers=None):
    import json

    return api.request("POST", f"/v1/customers/{customer_id}/credits/spend", content=json.dumps(body),
                       headers={"Content-Type": "application/json", **(headers or {})})


@pytest.fixture
def customer(api):
    customer, _ = api.subscribed()
    return customer["id"]


def test_the_spend_path_serves_a_spend_without_the_route(api, customer, monkeypatch):
    def route_not_used(*args, **kwargs):
        raise AssertionError("the route served the spend")

    monkeypatch.setattr(credit_routes, "spend_job", route_not_used)
    response = _spend(api, customer, {"amount": "73.5", "feature": "pro_models", "reference": "job-1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    spent = response.json()
    assert (spent["object"], spent["amount"], spent["balance"], spent["status"]) == ("credit_spend", "73.5", "7926.5", "spent")


def test_the_route_and_the_spend_path_give_the_same_bytes(api, customer):
    body = {"amount": "2.5", "feature": "pro_models", "reference": "job-same"}
    fast = _spend(api, customer, body)
    routed = _spend(api, customer, body, ROUTE_ONLY)  # a repeat of the reference: the first result
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert fast.headers["content-type"] == routed.headers["content-type"]
    assert fast.headers["content-length"] == routed.headers["content-length"]


@pytest.mark.parametrize("body, status, code, param", [
    ({"amount": "100000", "feature": "pro_models", "reference": "r"}, 402, "insufficient_credits", ...),
    ({"amount": "1", "feature": "private_generations", "reference": "r"}, 403, "feature_not_in_plan", ...),
    ({"amount": "1", "feature": "telepathy", "reference": "r"}, 422, "invalid_request", "feature"),
    ({"amount": "1.2345", "feature": "pro_models", "reference": "r"}, 422, "invalid_request", "amount"),
    ({"amount": "1", "feature": "pro_models"}, 422, "invalid_request", "reference"),
    ({"amount": "1", "feature": "pro_models", "reference": "r", "extra": 1}, 422, "invalid_request", "extra"),
])
def test_refusals_read_the_same_on_both_paths(api, body, status, code, param):
    customer, _ = api.subscribed(plan="basic")
    fast = _spend(api, customer["id"], body)
    routed = _spend(api, customer["id"], body, ROUTE_ONLY)
    assert_error(fast, status, code, param)
    assert fast.json() == routed.json()


def test_unknown_customer_and_odd_paths(api):
    body = {"amount": "1", "feature": "standard_models", "reference": "r"}
    assert_error(_spend(api, "cus_nope", body), 404, "not_found")
    response = api.request("POST", "/v1/customers//credits/spend", json=body)
    assert response.status_code in (404, 405)
    assert_error(api.request("POST", "/v1/customers/a/b/credits/spend", json=body), 404, "not_found")


@pytest.mark.parametrize("raw, content_type, status, code", [
    (b"{not json", "application/json", 400, "invalid_json"),
    (b"[1, 2]", "application/json", 400, "invalid_json"),
    (b"", "application/json", 400, "invalid_json"),
    (b"[" * 1000, "application/json", 400, "invalid_json"),
    (b'{"amount": "1", "feature": "standard_models", "reference": "r"}', "text/plain", 415, "unsupported_media_type"),
])
def test_bodies_the_spend_path_does_not_take_get_the_route_answer(api, raw, content_type, status, code):
    customer = api.customer(payment_method=None)
    response = api.request("POST", f"/v1/customers/{customer['id']}/credits/spend", content=raw,
                           headers={"Content-Type": content_type})
    assert_error(response, status, code)


def test_the_spend_path_takes_no_worker_thread_for_a_usual_spend_on_sqlite(api, customer, monkeypatch):
    """The database's spend writer answers it: the pool's threads are left to the other requests."""
    def no_thread(*args, **kwargs):
        raise AssertionError("a worker thread was taken")

    monkeypatch.setattr(fastpath.to_thread, "run_sync", no_thread)
    response = _spend(api, customer, {"amount": "3", "feature": "pro_models", "reference": "job-queued"})
    assert response.status_code == 200, response.text
    assert response.json()["balance"] == "7997"


def _handed_back(*args, on_done, **kwargs):
    """The spend writer's answer when the general path must answer: None, from its own thread."""
    threading.Thread(target=on_done, args=(None,)).start()
    return True


def test_a_spend_the_writer_hands_back_is_answered_by_the_general_path(api, customer, monkeypatch):
    monkeypatch.setattr(fastpath, "queue_spend_job", _handed_back)
    response = _spend(api, customer, {"amount": "4", "feature": "pro_models", "reference": "job-back"})
    assert response.status_code == 200, response.text
    assert response.json()["balance"] == "7996"
    assert _spend(api, customer, {"amount": "4", "feature": "pro_models", "reference": "job-back"}).content == (
        response.content)  # the repeat, through the writer this time, replays it


def test_database_errors_map_as_on_every_route(api, customer, monkeypatch):
    def busy(*args, **kwargs):
        raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    monkeypatch.setattr(fastpath, "queue_spend_job", _handed_back)  # the writer's connection failed
    monkeypatch.setattr(fastpath, "spend_job", busy)
    response = _spend(api, customer, {"amount": "1", "feature": "pro_models", "reference": "r"})
    assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "1"

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(fastpath, "spend_job", broken)
    assert_error(_spend(api, customer, {"amount": "1", "feature": "pro_models", "reference": "r"}), 500,
                 "internal_error")


def test_the_gate_still_guards_the_spend_path(api, customer):
    body = {"amount": "1", "feature": "pro_models", "reference": "r"}
    assert_error(api.request("POST", f"/v1/customers/{customer}/credits/spend", json=body, key=None), 401,
                 "unauthorized")
    assert_error(api.request("POST", f"/v1/customers/{customer}/credits/spend", json=body, key="sk_wrong"), 401,
                 "unauthorized")


def test_idempotency_keys_replay_a_spend_path_answer(api, customer):
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"amount": "1", "feature": "pro_models", "reference": "idem-1"}
    first = _spend(api, customer, body, key)
    again = _spend(api, customer, body, key)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true" and again.content == first.content
    assert_error(_spend(api, customer, dict(body, amount="2"), key), 409, "idempotency_key_reused")
    assert api.ok("GET", f"/v1/customers/{customer}/credits")["available"] == "7999"


def test_answers_wake_a_loop_once_for_all_that_arrived_meanwhile():
    answers = fastpath.Answers()

    async def main():
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(100)]
        wakeups = []
        real = loop.call_soon_threadsafe

        def counting(*args):
            wakeups.append(args)
            return real(*args)

        loop.call_soon_threadsafe = counting
        writer = threading.Thread(target=lambda: [answers.deliver(f, n) for n, f in enumerate(futures)])
        writer.start()
        writer.join()  # the loop is busy meanwhile (here: blocked)
        assert [await future for future in futures] == list(range(100))
        assert len(wakeups) == 1
        late = loop.create_future()
        answers.deliver(late, "after")  # a new batch: woken again
        assert await late == "after" and len(wakeups) == 2
        return loop.create_future()

    orphan = asyncio.run(main())
    answers.deliver(orphan, "nobody waits")  # its loop is closed: dropped, no error
    assert not orphan.done()


def test_the_server_puts_what_start_up_made_out_of_the_collectors_reach(sqlite_db, monkeypatch):
    """`creditflow serve` freezes the start-up heap before it serves, so that a full collection
    under load does not walk the whole app (which stalled every request for 150-200 ms)."""
    import gc

    from creditflow.api import server
    from creditflow.api.settings import Settings
    from creditflow.wiring import build_context

    frozen_at_start = []

    def fake_uvicorn_run(app, **kwargs):
        frozen_at_start.append(gc.get_freeze_count())

    monkeypatch.setattr(server.uvicorn, "run", fake_uvicorn_run)
    try:
        server.serve(build_context(sqlite_db), Settings(secret_key="x"), host="127.0.0.1", port=1, worker=False)
    finally:
        gc.unfreeze()
    assert len(frozen_at_start) == 1 and frozen_at_start[0] > 10_000
