"""API keys: created, bootstrapped from configuration, listed, revoked, and checked on every
request.

A key has a scope: `server` (the host app's backend); `support`, which can do everything
`server` can and the support actions besides; or `admin`, which can do everything `support` can
and manage the API keys themselves (list and revoke them). Managing keys is kept out of
`support` so that a support key that leaks can't revoke every other key, nor list them.

A `metrics` key reads `GET /metrics` and nothing else (it has no rank: the /v1 API refuses it),
so that the monitoring system holds a key that can't touch billing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditflow.auth.models import ApiKey
from creditflow.kit.db.paging import page_after
from creditflow.kit.db.rows import get_or_not_found
from creditflow.kit.errors import Conflict, Forbidden, InvalidRequest
from creditflow.kit.ids import new_id
from creditflow.kit.settings import comma_separated

SCOPES = ("server", "support", "admin", "metrics")
# Each of these scopes can do what the ones ranked below it can; a scope without a rank is
# granted nothing by `Principal.can`.
_RANK = {"server": 0, "support": 1, "admin": 2}
SUPPORT, ADMIN, METRICS = "support", "admin", "metrics"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's id and scope (what a request carries around)."""

    key_id: str
    scope: str

    @property
    def is_support(self) -> bool:
        return self.can(SUPPORT)

    def can(self, scope: str) -> bool:
        return _RANK.get(self.scope, -1) >= _RANK[scope]

    def require(self, scope: str) -> None:
        if not self.can(scope):
            raise Forbidden(f"this action needs {'an' if scope == ADMIN else 'a'} {scope} key", code="forbidden")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise InvalidRequest(f"scope must be one of: {', '.join(SCOPES)}", param="scope")
    return scope


def create_api_key(session: Session, scope: str, *, now: datetime, secret: str | None = None) -> tuple[ApiKey, str]:
    """A new key; the secret is returned once and never stored."""
    _check_scope(scope)
    secret = secret or f"sk_{scope}_{secrets.token_urlsafe(32)}"
    key = ApiKey(id=new_id("key"), key_hash=hash_key(secret), prefix=secret[:12], scope=scope, created_at=now)
    session.add(key)
    session.flush()
    return key, secret


def parse_bootstrap_keys(spec: str | None) -> list[tuple[str, str]]:
    """`"sk_server_x:server,sk_support_y:support"` -> [(secret, scope), ...]."""
    pairs = []
    for item in comma_separated(spec):
        secret, sep, scope = item.rpartition(":")
        if not sep or not secret:
            raise ValueError(f"CREDITFLOW_BOOTSTRAP_KEYS: expected SECRET:SCOPE, got {item!r}")
        if scope not in SCOPES:
            raise ValueError(f"CREDITFLOW_BOOTSTRAP_KEYS: unknown scope {scope!r} (use {', '.join(SCOPES)})")
        pairs.append((secret, scope))
    return pairs


def ensure_keys(db, pairs: list[tuple[str, str]], *, now: datetime) -> int:
    """Create the given keys unless they exist (several processes may start at once)."""
    created = 0
    for secret, scope in pairs:
        try:
            with db.transaction() as session:
                if session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(secret))) is None:
                    create_api_key(session, scope, now=now, secret=secret)
                    created += 1
        except IntegrityError:  # another process created it first
            pass
    return created


def list_api_keys(session: Session, *, limit: int = 20, starting_after: str | None = None,
                  include_revoked: bool = True) -> tuple[list[ApiKey], bool]:
    """Oldest first (ids grow with time). Only the prefix of each secret is known here."""
    query = select(ApiKey)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return page_after(session, query, order_by=ApiKey.id, id_column=ApiKey.id, starting_after=starting_after,
                      limit=limit, noun="API key")


def revoke_api_key(session: Session, key_id: str, *, now: datetime) -> ApiKey:
    """The key stops working within half a second in every API process (each keeps a key it
    checked for that long: api/gate.py `AUTH_CACHE_SECONDS`). A revoked key stays listed, with
    when it was revoked; revoking it again is refused (409 `already_revoked`)."""
    key = get_or_not_found(session, ApiKey, key_id, noun="API key", param="id", with_for_update=True)
    if key.revoked_at is not None:
        raise Conflict(f"API key {key_id} was already revoked", code="already_revoked")
    key.revoked_at = now
    session.flush()
    return key


def authenticate(session: Session, secret: str) -> Principal | None:
    row = session.execute(
        select(ApiKey.id, ApiKey.scope).where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None))
    ).first()
    return Principal(row.id, row.scope) if row else None
