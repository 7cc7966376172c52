"""Idempotency keys: a replay returns the first response and does nothing else.

The key is claimed in a transaction of its own, committed before the work starts, so that a
concurrent request with the same key finds the claim and waits for the first one's response
instead of doing the work a second time. A request whose work failed with a server error
gives its claim up, so that a retry can do the work.

On SQLite the claim and the response are each a commit that waits for the disk, two for every
request with a key besides the work's own. They go through the grouped writer
(kit/db/grouped.py): the claims and responses of concurrent requests share commits. A claim
that finds its key taken is rolled back there and claimed again the usual way, which finds out
what became of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from creditflow.idempotency.models import IdempotencyRecord
from creditflow.kit.db import grouped
from creditflow.kit.db.compiled import CompiledStatement, UnitCursor

RETENTION = timedelta(hours=48)  # a replay must be recognised for at least 24 hours
# A claim still in progress after this long belongs to a process that died mid-request; no
# request runs anywhere near this long, so a new request may take the key over.
ABANDONED_AFTER = timedelta(minutes=10)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Claimed:
    record_id: int


@dataclass(frozen=True)
class Replay:
    status: int
    body: bytes


@dataclass(frozen=True)
class Mismatch:
    """The key was used for a different request."""


@dataclass(frozen=True)
class InProgress:
    """The first request with this key is still running."""


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The same request: method, path and body, with JSON compared by value (key order and
    whitespace don't make a request different)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


_records = IdempotencyRecord.__table__
_insert_claim = CompiledStatement(insert(_records).inline())
_store_response = CompiledStatement(update(_records).where(_records.c.id == bindparam("b_id")).values(
    status="done", response_status=bindparam("b_status", type_=_records.c.response_status.type),
    response_body=bindparam("b_body", type_=_records.c.response_body.type),
    completed_at=bindparam("b_at", type_=_records.c.completed_at.type)))


def claim(db, api_key_id: str, key: str, digest: str, *, now: datetime) -> Claimed | Replay | Mismatch | InProgress:
    if db.is_sqlite:
        record_id = grouped.write(db, lambda cursor: _claim_in_group(db, cursor, api_key_id, key, digest, now))
        if record_id is not None:
            return Claimed(record_id)
    try:
        with db.transaction() as session:
            record = IdempotencyRecord(api_key_id=api_key_id, key=key, fingerprint=digest, status="in_progress",
                                       created_at=now)
            session.add(record)
            session.flush()
            return Claimed(record.id)
    except IntegrityError:
        return lookup(db, api_key_id, key, digest, now=now) or InProgress()


def _claim_in_group(db, cursor: sqlite3.Cursor, api_key_id: str, key: str, digest: str, now: datetime) -> int | None:
    try:
        _insert_claim.execute(UnitCursor(db.engine.dialect, cursor), {
            "api_key_id": api_key_id, "key": key, "fingerprint": digest, "status": "in_progress",
            "response_status": None, "response_body": None, "created_at": now, "completed_at": None})
    except sqlite3.IntegrityError:  # taken: `claim` finds out by whom
        return None
    return cursor.lastrowid


def lookup(db, api_key_id: str, key: str, digest: str, *, now: datetime | None = None
           ) -> Replay | Mismatch | InProgress | None:
    """What became of a claimed key; None if its claim was given up (or abandoned) meanwhile."""
    with db.transaction(readonly=True) as session:
        record = session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key))
        if record is None:
            return None
        if record.fingerprint != digest:
            return Mismatch()
        if record.status != "done":
            if now is not None and record.created_at <= now - ABANDONED_AFTER:
                _drop_abandoned(db, record.id, now)
                return None
            return InProgress()
        return Replay(record.response_status, record.response_body or b"")


def _drop_abandoned(db, record_id: int, now: datetime) -> None:
    with db.transaction() as session:
        session.execute(delete(IdempotencyRecord).where(
            IdempotencyRecord.id == record_id, IdempotencyRecord.status == "in_progress",
            IdempotencyRecord.created_at <= now - ABANDONED_AFTER))


def claim_or_wait(db, api_key_id: str, key: str, digest: str, *, now: datetime, timeout: float,
                  poll: float = 0.02) -> Claimed | Replay | Mismatch | InProgress:
    """Claim the key; if another request holds it, wait for its response (or claim it if that
    request gave up) until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    outcome = claim(db, api_key_id, key, digest, now=now)
    while isinstance(outcome, InProgress) and time.monotonic() < deadline:
        time.sleep(poll)
        poll = min(poll * 1.5, 0.25)
        # Reads only while the first request works, so waiting doesn't compete for the write lock.
        outcome = lookup(db, api_key_id, key, digest, now=now)
        if outcome is None:  # the first request gave its claim up (a server error): take it
            outcome = claim(db, api_key_id, key, digest, now=now)
    return outcome


def complete(db, record_id: int, status: int, body: bytes, *, now: datetime) -> None:
    values = {"b_id": record_id, "b_status": status, "b_body": body, "b_at": now}
    if db.is_sqlite and grouped.write(db, lambda cursor: _store_in_group(db, cursor, values)):
        return
    with db.transaction() as session:
        session.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == record_id).values(
            status="done", response_status=status, response_body=body, completed_at=now))


def _store_in_group(db, cursor: sqlite3.Cursor, values: dict) -> bool:
    _store_response.execute(UnitCursor(db.engine.dialect, cursor), values)
    return True


def release(db, record_id: int) -> None:
    """Give a claim up (the work failed with a server error and may be retried)."""
    with db.transaction() as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


def purge(db, *, now: datetime) -> int:
    with db.transaction() as session:
        return session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - RETENTION)
        ).rowcount
