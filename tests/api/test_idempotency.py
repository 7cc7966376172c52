"""Idempotency-Key: a replay returns the first response and does nothing else; another body
with the same key is refused; concurrent duplicates do the work once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from api_kit import SERVER_KEY, SUPPORT_KEY, LiveServer, assert_error

from creditflow.auth.models import ApiKey
from creditflow.idempotency import service as idempotency
from creditflow.idempotency.models import IdempotencyRecord
from creditflow.invoicing.models import Invoice
from creditflow.payment.models import SandboxCharge


def _count(api, model, **where):
    with api.ctx.db.transaction(readonly=True) as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.scalar(query)


def test_replay_returns_the_first_response_and_does_nothing_else(any_api):
    api = any_api
    customer, _ = api.subscribed()
    path, body = f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000"}
    first = api.post(path, body, headers={"Idempotency-Key": "buy-1"})
    again = api.post(path, {"bundle": "credits_1000"}, headers={"Idempotency-Key": "buy-1"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert _count(api, Invoice, customer_id=customer["id"], purpose="top_up") == 1
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["by_kind"]["top_up"] == "1000"


def test_errors_are_replayed_too(api):
    customer = api.customer(payment_method="pm_card_declined")
    body = {"customer": customer["id"], "plan": "standard", "term": "monthly"}
    first = api.post("/v1/subscriptions", body, headers={"Idempotency-Key": "sub-1"})
    assert_error(first, 402, "payment_failed")
    api.ok("POST", f"/v1/customers/{customer['id']}/payment_method", {"token": "pm_card_ok"})
    replay = api.post("/v1/subscriptions", body, headers={"Idempotency-Key": "sub-1"})
    assert replay.status_code == 402 and replay.content == first.content
    assert api.post("/v1/subscriptions", body, headers={"Idempotency-Key": "sub-2"}).status_code == 201


def test_same_key_with_another_body_is_409(api):
    api.ok("POST", "/v1/customers", {"external_id": "a", "email": "a@example.com"},
           headers={"Idempotency-Key": "k"})
    response = api.post("/v1/customers", {"external_id": "b", "email": "a@example.com"},
                        headers={"Idempotency-Key": "k"})
    assert_error(response, 409, "idempotency_key_reused", "Idempotency-Key")
    other_path = api.post("/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/x"}, headers={"Idempotency-Key": "k"})
    assert_error(other_path, 409, "idempotency_key_reused")
    assert [c["external_id"] for c in api.ok("GET", "/v1/customers")["data"]] == ["a"]


def test_same_body_in_another_key_order_is_the_same_request(api):
    first = api.post("/v1/customers", content=b'{"external_id": "a", "email": "a@example.com"}',
                     headers={"Idempotency-Key": "k", "Content-Type": "application/json"})
    again = api.post("/v1/customers", content=b'{"email":"a@example.com","external_id":"a"}',
                     headers={"Idempotency-Key": "k", "Content-Type": "application/json"})
    assert first.status_code == again.status_code == 201 and first.content == again.content


def test_keys_belong_to_one_api_key(api):
    one = api.ok("POST", "/v1/customers", {"external_id": "a", "email": "a@example.com"},
                 headers={"Idempotency-Key": "k"})
    other = api.post("/v1/customers", {"external_id": "a", "email": "a@example.com"},
                     headers={"Idempotency-Key": "k"}, key=SUPPORT_KEY)
    assert_error(other, 409, "customer_exists")  # not a replay: the work was tried again
    assert one["external_id"] == "a"


def test_delete_is_idempotent(api):
    _, sub = api.subscribed()
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/change",
           {"plan": "basic", "term": "monthly", "timing": "end_of_period"})
    path = f"/v1/subscriptions/{sub['id']}/scheduled_change"
    first = api.delete(path, headers={"Idempotency-Key": "d"})
    again = api.delete(path, headers={"Idempotency-Key": "d"})
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert_error(api.delete(path), 409, "no_scheduled_change")


def test_a_too_long_key_is_422(api):
    response = api.post("/v1/customers", {"external_id": "a", "email": "a@example.com"},
                        headers={"Idempotency-Key": "k" * 300})
    assert_error(response, 422, "invalid_request", "Idempotency-Key")


def test_eight_concurrent_requests_with_one_key_have_one_effect(any_api):
    api = any_api
    customer, _ = api.subscribed()
    path = f"/v1/customers/{customer['id']}/top_ups"
    barrier = threading.Barrier(8)
    responses: list[httpx.Response] = []
    errors: list[BaseException] = []

    with LiveServer(api.client.app) as server:
        def buy() -> None:
            try:
                with httpx.Client(base_url=server.url, timeout=60) as client:
                    barrier.wait()
                    responses.append(client.post(path, json={"bundle": "credits_1000"}, headers={
                        "Authorization": f"Bearer {SERVER_KEY}", "Idempotency-Key": "concurrent-buy"}))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=buy) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert not errors
    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 7
    assert _count(api, Invoice, customer_id=customer["id"], purpose="top_up") == 1
    assert _count(api, SandboxCharge, customer_ref=customer["id"]) == 2  # the subscription and one top-up
    assert api.ok("GET", f"/v1/customers/{customer['id']}/credits")["by_kind"]["top_up"] == "1000"


def test_a_claim_abandoned_by_a_dead_process_is_taken_over(api):
    from datetime import timedelta

    body = b'{"external_id":"a","email":"a@example.com"}'
    digest = idempotency.fingerprint("POST", "/v1/customers", body)
    now = api.ctx.clock.now()
    with api.ctx.db.transaction(readonly=True) as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.scope == "server"))
    claimed = idempotency.claim(api.ctx.db, key_id, "k", digest, now=now - timedelta(minutes=11))
    assert isinstance(claimed, idempotency.Claimed)
    # A fresh claim in progress makes a duplicate wait, then give up with 409...
    fresh = idempotency.claim(api.ctx.db, key_id, "k2", digest, now=now)
    assert isinstance(fresh, idempotency.Claimed)
    assert isinstance(idempotency.claim_or_wait(api.ctx.db, key_id, "k2", digest, now=now, timeout=0.1),
                      idempotency.InProgress)
    # ...but one abandoned long ago is taken over and the request runs.
    response = api.post("/v1/customers", content=body,
                        headers={"Idempotency-Key": "k", "Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    with api.ctx.db.transaction(readonly=True) as session:
        record = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "k"))
        assert record.status == "done"


def test_concurrent_claims_and_responses_share_commits_on_sqlite(api, grouped_commits):
    """On SQLite the claims and the stored responses of concurrent requests go through the
    grouped writer: fewer commits than claims, each claim durable and its own, a key already
    taken answered as before (in progress, replayed, or another request's), and a stored
    response replayed."""
    from datetime import timedelta

    db, now = api.ctx.db, api.ctx.clock.now()
    with db.transaction(readonly=True) as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.scope == "server"))
    start = threading.Barrier(24)

    def claim(n: int):
        start.wait()
        return idempotency.claim(db, key_id, f"key-{n % 20}", f"digest-{n % 20}", now=now - timedelta(seconds=n))

    with ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(claim, range(24)))
    claimed = [o for o in outcomes if isinstance(o, idempotency.Claimed)]
    assert len(claimed) == 20 and len({o.record_id for o in claimed}) == 20
    assert [type(o) for o in outcomes if not isinstance(o, idempotency.Claimed)] == [idempotency.InProgress] * 4
    assert max(grouped_commits) > 1 and len(grouped_commits) < 24
    with db.transaction(readonly=True) as session:
        records = {r.id: r for r in session.scalars(select(IdempotencyRecord))}
    by_key = {}
    for n, outcome in enumerate(outcomes):
        if isinstance(outcome, idempotency.Claimed):
            record = by_key[n % 20] = records[outcome.record_id]
            assert (record.key, record.fingerprint, record.status) == (f"key-{n % 20}", f"digest-{n % 20}",
                                                                       "in_progress")
            assert record.created_at == now - timedelta(seconds=n)  # aware UTC, as the ORM writes it
    assert isinstance(idempotency.claim(db, key_id, "key-3", "another", now=now), idempotency.Mismatch)

    grouped_commits.clear()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: idempotency.complete(db, by_key[n].id, 201, f"body-{n}".encode(), now=now), range(8)))
    assert sum(grouped_commits) == 8
    for n in range(8):
        replay = idempotency.claim(db, key_id, f"key-{n}", f"digest-{n}", now=now)
        assert replay == idempotency.Replay(201, f"body-{n}".encode())
