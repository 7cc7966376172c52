"""Console sessions on the server: started at sign-in, checked on every console request, ended
by signing out, and ended all at once for a user who is disabled or whose password changes.

The browser holds a random token (inside the signed session cookie); the database holds its
SHA-256, the user and the expiry. A session is valid while its row exists and has not expired,
so ending one is deleting its row, in whichever process: every process reads the row.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from creditflow.support.models import ConsoleSession


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_console_session(session: Session, user_id: str, *, now: datetime, expires_at: datetime) -> str:
    """A new session for `user_id`; returns the token for the cookie (never stored as such).
    Sessions that expired, anyone's, are deleted on the way: sign-ins are rare, so this keeps
    the table to the live sessions without a job of its own."""
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_hash=_hash(token), user_id=user_id, created_at=now, expires_at=expires_at))
    session.flush()
    return token


def console_session_valid(session: Session, token: str | None, user_id: str, *, now: datetime) -> bool:
    """Whether `token` is a live session of `user_id`."""
    if not token:
        return False
    row = session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))
    return row is not None and row.user_id == user_id and row.expires_at > now


def end_console_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))


def end_user_sessions(session: Session, user_id: str) -> int:
    """End every console session of `user_id` (disabled, or a new password); returns how many."""
    return session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id)).rowcount
