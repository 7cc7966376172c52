"""Reading events, and registering the webhook endpoints they are delivered to."""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from datetime import datetime
from hashlib import sha256
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditflow.events.models import Event, WebhookEndpoint
from creditflow.kit.clock import format_instant
from creditflow.kit.db.paging import page_after
from creditflow.kit.errors import InvalidRequest, NotFound
from creditflow.kit.ids import new_id
from creditflow.kit.settings import comma_separated

EVENT_TYPE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")


def event_payload(event: Event) -> dict:
    """An event as the API lists it and as webhooks deliver it."""
    return {"id": event.id, "object": "event", "type": event.type, "customer": event.customer_id,
            "created_at": format_instant(event.created_at), "data": event.data}


def list_events(session: Session, *, customer: str | None = None, type: str | None = None, limit: int = 20,
                starting_after: str | None = None) -> tuple[list[Event], bool]:
    """Oldest first (a feed: page on with the last id seen); `starting_after` continues after an event."""
    query = select(Event)
    if customer is not None:
        query = query.where(Event.customer_id == customer)
    if type is not None:
        query = query.where(Event.type == type)
    return page_after(session, query, order_by=Event.seq, id_column=Event.id, starting_after=starting_after,
                      limit=limit, noun="event")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Creditflow-Signature` header: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def check_url(url: str, denied: tuple = ()) -> str:
    """Any http or https URL, loopback included, unless its literal address is in a range the
    operator denied (CREDITFLOW_WEBHOOK_DENY)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidRequest("url is not a valid URL", param="url") from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
        raise InvalidRequest("url must be an http or https URL", param="url")
    if denied_address(host, denied):
        raise InvalidRequest(f"webhooks to {host} are not allowed here", param="url")
    return url


def denied_ranges(raw: str | None) -> tuple:
    """The address ranges webhooks may not target, from `CREDITFLOW_WEBHOOK_DENY` (CIDRs, comma
    separated)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in comma_separated(raw))


def denied_address(host: str, denied: tuple) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in denied)


def create_webhook_endpoint(session: Session, *, url: str, events: list[str] | None, now: datetime,
                            denied: tuple = ()) -> WebhookEndpoint:
    check_url(url, denied)
    if events is not None:
        if not events:
            raise InvalidRequest("events must name at least one event type (or be left out for all)",
                                 param="events")
        for index, name in enumerate(events):
            if not EVENT_TYPE.match(name):
                raise InvalidRequest(f"not an event type: {name!r}", param=f"events.{index}")
        events = sorted(set(events))
    after = session.scalar(select(func.coalesce(func.max(Event.seq), 0)))
    endpoint = WebhookEndpoint(id=new_id("we"), url=url, secret=f"whsec_{secrets.token_urlsafe(32)}",
                               events=events, after_seq=after, created_at=now)
    session.add(endpoint)
    return endpoint


def get_webhook_endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        raise NotFound(f"no such webhook endpoint: {endpoint_id}", param="id")
    return endpoint


def list_webhook_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None))
                                .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())))


def delete_webhook_endpoint(session: Session, endpoint_id: str, *, now: datetime) -> WebhookEndpoint:
    """Stop delivering to an endpoint; what was not delivered yet is dropped."""
    endpoint = get_webhook_endpoint(session, endpoint_id)
    endpoint.deleted_at = now
    return endpoint
