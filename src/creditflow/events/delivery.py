"""Delivering outbox events to webhook endpoints, as a worker job.

Each tick: fan new events out into one delivery row per interested endpoint, then claim the
deliveries that are due and POST them, signed, outside any transaction, and record each
outcome. A 2xx acknowledges; anything else is retried with exponential backoff for up to
3 days, after which the delivery is given up. At least once: a delivery is marked delivered
only after the endpoint answered 2xx, so a crash in between sends it again. In order per
customer: a delivery waits while an earlier event of the same customer to the same endpoint
is still pending.

Deliveries run on real time only: events of test-clock customers go out when they are
recorded, like any other.

Settled deliveries (delivered or given up) are kept for `CREDITFLOW_WEBHOOK_RETENTION_DAYS`
(30 by default) for support to look at, then deleted by the `webhook_purge` job, a batch at a
time. The events themselves stay: they are the record that `GET /v1/events` lists.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, delete, exists, false, select
from sqlalchemy.orm import Session, aliased

from creditflow.events.models import Event, WebhookDelivery, WebhookEndpoint
from creditflow.events.service import denied_address, denied_ranges, event_payload, resolve_host, sign

log = logging.getLogger("creditflow.webhooks")

GIVE_UP_AFTER = timedelta(days=3)
FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(hours=6)
LEASE = timedelta(seconds=60)  # longer than a delivery's timeout
BATCH = 100
MAX_ROUNDS = 20
PURGE_BATCH = 1000


def timeout_seconds() -> float:
    return float(os.environ.get("CREDITFLOW_WEBHOOK_TIMEOUT", "5"))


def retry_delay(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s, ... doubling up to 6 hours: about 25 attempts over 3 days."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)


@dataclass(frozen=True)
class Outgoing:
    delivery_id: int
    url: str
    secret: str
    body: bytes


def fan_out(session: Session, now: datetime, *, batch: int = 500) -> int:
    """Give every new event a delivery row per endpoint that wants it; returns events handled."""
    endpoints = list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None))))
    events = list(session.scalars(
        select(Event).where(Event.dispatched == false()).order_by(Event.seq).limit(batch)
        .with_for_update(skip_locked=True)
    ))
    for event in events:
        for endpoint in endpoints:
            if event.seq > endpoint.after_seq and endpoint.wants(event.type):
                session.add(WebhookDelivery(
                    endpoint_id=endpoint.id, event_seq=event.seq, event_id=event.id,
                    customer_id=event.customer_id, status="pending", attempts=0, next_attempt_at=now,
                    created_at=now,
                ))
        event.dispatched = True
    return len(events)


def claim_due(session: Session, now: datetime, *, batch: int = BATCH) -> list[Outgoing]:
    """Due deliveries with no earlier pending one of the same customer and endpoint, leased so
    that no other worker sends them meanwhile."""
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(and_(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.customer_id == WebhookDelivery.customer_id,
        earlier.status == "pending",
        earlier.event_seq < WebhookDelivery.event_seq,
    ))
    rows = list(session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, ~blocked)
        .order_by(WebhookDelivery.event_seq).limit(batch)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    ))
    outgoing = []
    for delivery in rows:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint.deleted_at is not None:
            delivery.status, delivery.completed_at, delivery.last_error = "failed", now, "endpoint deleted"
            continue
        event = session.scalar(select(Event).where(Event.seq == delivery.event_seq))
        body = json.dumps(event_payload(event), separators=(",", ":")).encode()
        delivery.next_attempt_at = now + LEASE
        outgoing.append(Outgoing(delivery.id, endpoint.url, endpoint.secret, body))
    return outgoing


def send(client: httpx.Client, item: Outgoing, now: datetime, denied: tuple = (),
         resolve=resolve_host) -> tuple[int | None, str | None]:
    """POST one delivery. Returns (status code, error).

    The URL's host is resolved here, at every attempt, and refused if any of its addresses is
    denied (a name may have resolved to an allowed address when the endpoint was registered and
    to a metadata or internal address since). The connection then goes to an address that was
    checked, not to the name: resolving again to connect would let a name that changes between
    the check and the connection (DNS rebinding) slip past. The request keeps the name in its
    Host header and, over https, in SNI and the certificate check."""
    url = httpx.URL(item.url)
    host = url.raw_host.decode("ascii")
    try:
        addresses = resolve(host, url.port or (443 if url.scheme == "https" else 80))
    except OSError as exc:
        return None, f"could not resolve {host}: {exc}"[:500]
    refused = next((address for address in addresses if denied_address(address, denied)), None)
    if refused is not None or not addresses:
        return None, f"{host} resolves to {refused}, an address webhooks may not target"
    headers = {"Host": url.netloc.decode("ascii"), "Content-Type": "application/json",
               "User-Agent": "creditflow-webhooks/1",
               "Creditflow-Signature": sign(item.secret, int(now.timestamp()), item.body)}
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    error = None
    for address in addresses:  # in the resolver's order, as a plain connection would try them
        try:
            response = client.post(url.copy_with(host=address.split("%", 1)[0]), content=item.body,
                                   headers=headers, extensions=extensions)
        except httpx.ConnectError as exc:
            error = f"{exc.__class__.__name__}: {exc}"[:500]
            continue
        except httpx.HTTPError as exc:
            return None, f"{exc.__class__.__name__}: {exc}"[:500]
        return response.status_code, None
    return None, error


def record_outcome(session: Session, delivery_id: int, status_code: int | None, error: str | None,
                   now: datetime) -> None:
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True, populate_existing=True)
    if delivery is None or delivery.status != "pending":
        return
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.completed_at = "delivered", now
    elif now - delivery.created_at >= GIVE_UP_AFTER:
        delivery.status, delivery.completed_at = "failed", now
        log.warning("webhook delivery %s of %s given up after %s attempts", delivery.id, delivery.event_id,
                    delivery.attempts)
    else:
        delivery.next_attempt_at = now + retry_delay(delivery.attempts)


def deliver_due(ctx, now: datetime, *, batch: int = BATCH, denied: tuple = (), resolve=resolve_host) -> int:
    """Fan out, then send what is due; returns how many events and deliveries were handled.
    `denied` are the operator's ranges (`ALWAYS_DENIED` is refused besides); `resolve` turns a
    host into its addresses (the system resolver; tests give their own names)."""
    done = 0
    with ctx.db.transaction(readonly=True) as session:
        has_new = session.scalar(select(Event.seq).where(Event.dispatched == false()).limit(1)) is not None
    if has_new:
        while (handled := ctx.db.run(lambda session: fan_out(session, now))) > 0:
            done += handled
    with ctx.db.transaction(readonly=True) as session:
        due = session.scalar(select(WebhookDelivery.id).where(
            WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now).limit(1)) is not None
    if not due:
        return done
    # No kept-alive connections: a connection is to an address, and one made for one endpoint's
    # name (its SNI, its certificate) must not carry another name's request to the same address.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=timeout_seconds(), follow_redirects=False, limits=limits) as client:
        # An acknowledged delivery unblocks the customer's next event: claim again until no
        # more is due (bounded, so one busy tick can't starve the other jobs).
        for _ in range(MAX_ROUNDS):
            outgoing = ctx.db.run(lambda session: claim_due(session, now, batch=batch))
            if not outgoing:
                break
            for item in outgoing:
                status_code, error = send(client, item, now, denied, resolve)
                ctx.db.run(lambda session: record_outcome(session, item.delivery_id, status_code, error, now))
                done += 1
    return done


def _denied_from_env() -> tuple:
    return denied_ranges(os.environ.get("CREDITFLOW_WEBHOOK_DENY"))


def run(ctx, now: datetime, test_clock_id: str | None) -> int:
    if test_clock_id is not None:  # deliveries follow real time, not a test clock
        return 0
    return deliver_due(ctx, now, denied=_denied_from_env())


def retention() -> timedelta | None:
    """How long settled deliveries are kept; None (never deleted) when set to 0."""
    raw = os.environ.get("CREDITFLOW_WEBHOOK_RETENTION_DAYS", "30")
    try:
        days = float(raw)
    except ValueError:
        raise ValueError(f"CREDITFLOW_WEBHOOK_RETENTION_DAYS must be a number of days, not {raw!r}") from None
    if days < 0:
        raise ValueError(f"CREDITFLOW_WEBHOOK_RETENTION_DAYS must not be negative, not {raw!r}")
    return timedelta(days=days) if days else None


def purge_settled(ctx, now: datetime, *, keep: timedelta, batch: int = PURGE_BATCH, max_batches: int = 20) -> int:
    """Delete deliveries settled before `now - keep`, `batch` rows per transaction (short locks,
    bounded per tick: a backlog goes over several ticks). Returns how many were deleted."""
    cutoff = now - keep
    deleted = 0
    for _ in range(max_batches):
        def one_batch(session: Session) -> int:
            ids = select(WebhookDelivery.id).where(
                WebhookDelivery.status != "pending", WebhookDelivery.completed_at < cutoff,
            ).order_by(WebhookDelivery.completed_at).limit(batch)
            return session.execute(
                delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids.scalar_subquery()))
                .execution_options(synchronize_session=False)
            ).rowcount

        count = ctx.db.run(one_batch)
        deleted += count
        if count < batch:
            break
    return deleted


def run_purge(ctx, now: datetime, test_clock_id: str | None) -> int:
    keep = retention()
    if test_clock_id is not None or keep is None:  # real time only, like the deliveries
        return 0
    return purge_settled(ctx, now, keep=keep)
