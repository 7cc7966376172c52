"""API keys: created, bootstrapped from configuration, and checked on every request.

A key has a scope: `server` (the host app's backend) or `support`, which can do everything
`server` can and the support actions besides.
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
from creditflow.kit.errors import Forbidden, InvalidRequest
from creditflow.kit.ids import new_id
from creditflow.kit.settings import comma_separated

SCOPES = ("server", "support")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's id and scope (what a request carries around)."""

    key_id: str
    scope: str

    @property
    def is_support(self) -> bool:
        return self.scope == "support"

    def require(self, scope: str) -> None:
        if scope == "support" and not self.is_support:
            raise Forbidden("this action needs a support key", code="forbidden")


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
            raise ValueError(f"CREDITFLOW_BOOTSTRAP_KEYS: unknown scope {scope!r} (use {' or '.join(SCOPES)})")
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


def authenticate(session: Session, secret: str) -> Principal | None:
    row = session.execute(
        select(ApiKey.id, ApiKey.scope).where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None))
    ).first()
    return Principal(row.id, row.scope) if row else None
