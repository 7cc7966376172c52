"""Reading events, and registering the webhook endpoints they are delivered to."""

from __future__ import annotations

import difflib
import hmac
import ipaddress
import re
import secrets
import socket
from datetime import datetime
from hashlib import sha256
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditflow.events.models import Event, WebhookEndpoint
from creditflow.kit.clock import format_instant
from creditflow.kit.db.paging import page_after
from creditflow.kit.db.rows import get_or_not_found
from creditflow.kit.errors import InvalidRequest
from creditflow.kit.ids import new_id
from creditflow.kit.settings import comma_separated

EVENT_TYPE = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")

# Every type of event recorded, the one list: `GET /v1/events?type=` refuses any other, and the
# table in docs/http-api.md lists exactly these (a test holds them together). A new event type
# is added here first.
EVENT_TYPES = (
    "customer.created",
    "customer.updated",
    "payment_method.updated",
    "subscription.created",
    "subscription.renewed",
    "subscription.changed",
    "subscription.change_scheduled",
    "subscription.change_canceled",
    "subscription.canceled",
    "subscription.resumed",
    "subscription.past_due",
    "subscription.ended",
    "subscription.price_changing",
    "credits.granted",
    "credits.expired",
    "credits.spent",
    "credits.spend_refunded",
    "credits.hold_placed",
    "credits.hold_settled",
    "credits.hold_released",
    "credits.hold_expired",
    "credits.transferred",
    "top_up.purchased",
    "coupon.redeemed",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "refund.created",
    "member.invited",
    "member.joined",
    "member.removed",
    "member.suspended",
    "auto_top_up.succeeded",
    "auto_top_up.failed",
)


def event_payload(event: Event) -> dict:
    """An event as the API lists it and as webhooks deliver it."""
    return {"id": event.id, "object": "event", "type": event.type, "customer": event.customer_id,
            "created_at": format_instant(event.created_at), "data": event.data}


def list_events(session: Session, *, customer: str | None = None, type: str | None = None, limit: int = 20,
                starting_after: str | None = None) -> tuple[list[Event], bool]:
    """Oldest first (a feed: page on with the last id seen); `starting_after` continues after an event."""
    if type is not None and type not in EVENT_TYPES:
        close = difflib.get_close_matches(type, EVENT_TYPES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidRequest(f"type {type[:100]!r} is not an event type{hint}", param="type")
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


# Never a webhook target, whatever the operator set: "this host" (0.0.0.0 and :: reach the
# server's own listeners), link-local (169.254.169.254 is the cloud metadata service on AWS, GCP
# and Azure; fe80::/10 its IPv6 counterpart) and AWS's IPv6 metadata range. Loopback and private
# ranges stay allowed (a receiver on the same host or network is a normal set-up) unless the
# operator denies them with CREDITFLOW_WEBHOOK_DENY.
ALWAYS_DENIED = tuple(ipaddress.ip_network(cidr) for cidr in (
    "0.0.0.0/8", "169.254.0.0/16", "::/128", "fe80::/10", "fd00:ec2::/32"))


def check_url(url: str, denied: tuple = ()) -> str:
    """Any http or https URL, loopback included, unless an address it names or resolves to now is
    denied (`ALWAYS_DENIED`, and the ranges of CREDITFLOW_WEBHOOK_DENY). A name that doesn't
    resolve yet is accepted: every delivery checks again, against every address it resolves to
    then, since the name's addresses may change after this check."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InvalidRequest("url is not a valid URL", param="url") from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
        raise InvalidRequest("url must be an http or https URL", param="url")
    try:
        addresses = resolve_host(host)
    except OSError:
        addresses = []
    refused = next((address for address in addresses if denied_address(address, denied)), None)
    if refused is not None:
        shown = host if refused == host else f"{host} ({refused})"
        raise InvalidRequest(f"webhooks to {shown} are not allowed here", param="url")
    return url


def resolve_host(host: str, port: int | None = None) -> list[str]:
    """Every address `host` stands for, in the order the system resolver gives them: a literal
    address in any form the system accepts ("127.1", "2130706433", "::ffff:7f00:1") is itself, a
    name is looked up. Raises OSError when a name doesn't resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def denied_ranges(raw: str | None) -> tuple:
    """The address ranges webhooks may not target, from `CREDITFLOW_WEBHOOK_DENY` (CIDRs, comma
    separated), besides `ALWAYS_DENIED`."""
    ranges = []
    for cidr in comma_separated(raw):
        try:
            ranges.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise ValueError(f"CREDITFLOW_WEBHOOK_DENY: not an address range (CIDR): {cidr!r}") from None
    return tuple(ranges)


def _forms(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The address, and the IPv4 address an IPv6 one carries (IPv4-mapped ::ffff:a.b.c.d, which
    the system connects to as plain IPv4; the deprecated IPv4-compatible ::a.b.c.d; 6to4;
    NAT64's 64:ff9b::/96), so that a range denied in IPv4 also covers its IPv6 spellings."""
    forms = [address]
    if isinstance(address, ipaddress.IPv6Address):
        packed = address.packed
        embedded = [address.ipv4_mapped, address.sixtofour]
        if packed[:12] == bytes(12) and int(address) > 1:  # ::a.b.c.d, but not :: or ::1
            embedded.append(ipaddress.IPv4Address(packed[12:]))
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(packed[12:]))
        forms += [ipv4 for ipv4 in embedded if ipv4 is not None]
    return forms


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def denied_address(host: str, denied: tuple) -> bool:
    """Whether `host`, a literal address, is in `ALWAYS_DENIED` or a `denied` range, in any of its
    forms. A name (not an address) is for `resolve_host` to turn into addresses first."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # without an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return False
    return any(form in network for form in _forms(address) for network in (*ALWAYS_DENIED, *denied))


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
    return get_or_not_found(session, WebhookEndpoint, endpoint_id, noun="webhook endpoint", param="id",
                            exists=lambda endpoint: endpoint.deleted_at is None)


def list_webhook_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None))
                                .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())))


def delete_webhook_endpoint(session: Session, endpoint_id: str, *, now: datetime) -> WebhookEndpoint:
    """Stop delivering to an endpoint; what was not delivered yet is dropped."""
    endpoint = get_webhook_endpoint(session, endpoint_id)
    endpoint.deleted_at = now
    return endpoint
