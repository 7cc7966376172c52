"""Creating and redeeming portal links.

The token is `<session id>.<HMAC-SHA256(secret key, session id)>`: the signature proves that
creditflow made it (so a guessed id is worthless), and the stored row makes it single-use and
short-lived. Links live on real time, not on a customer's test clock: a browser is real.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from hashlib import sha256
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from creditflow.customer.service import get_customer
from creditflow.kit.errors import InvalidRequest, NotFound
from creditflow.kit.ids import new_id
from creditflow.portal.models import PortalSession
from creditflow.team.service import check_member_of

LINK_TTL = timedelta(minutes=5)
PAGE_PATH = "/billing/session/"


def _signature(secret_key: str, session_id: str) -> str:
    return hmac.new(secret_key.encode(), session_id.encode(), sha256).hexdigest()


def create_portal_session(session: Session, *, customer_id: str, return_url: str | None, secret_key: str,
                          now: datetime, ttl: timedelta = LINK_TTL,
                          member: str | None = None) -> tuple[PortalSession, str]:
    """A new link for the customer; returns the session and its token. Links handed to the
    host app live `LINK_TTL`; a link in an email lives longer (the customer reads it later)."""
    get_customer(session, customer_id)
    if return_url is not None:
        parts = urlsplit(return_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidRequest("return_url must be an http or https URL", param="return_url")
    # Whole seconds, so the instant shown to the caller is exactly when the link stops working.
    expires_at = (now + ttl).replace(microsecond=0)
    if member is not None:
        check_member_of(session, customer_id, member)
    portal = PortalSession(id=new_id("ps"), customer_id=customer_id, return_url=return_url,
                           expires_at=expires_at, created_at=now, member_id=member)
    session.add(portal)
    return portal, f"{portal.id}.{_signature(secret_key, portal.id)}"


def redeem_portal_token(session: Session, token: str, *, secret_key: str, now: datetime) -> PortalSession:
    """Use a link: it works once, before it expires, and only if creditflow signed it."""
    session_id, _, signature = token.partition(".")
    if not hmac.compare_digest(signature, _signature(secret_key, session_id)):
        raise NotFound("this link is not valid", param="token")
    portal = session.get(PortalSession, session_id, with_for_update=True, populate_existing=True)
    if portal is None or portal.used_at is not None or now >= portal.expires_at:
        raise NotFound("this link has expired or was already used", param="token")
    portal.used_at = now
    return portal
