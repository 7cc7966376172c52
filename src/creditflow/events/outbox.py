"""Recording events in the same transaction as the change they describe (an outbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from creditflow.events.models import Event
from creditflow.kit.ids import new_id


def record_event(
    session: Session, type: str, *, customer_id: str | None, data: dict[str, Any], now: datetime
) -> Event:
    event = Event(id=new_id("evt"), type=type, customer_id=customer_id, data=data, created_at=now)
    session.add(event)
    return event


def event_row(type: str, *, customer_id: str | None, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An event to write with `record_events`."""
    return {"id": new_id("evt"), "type": type, "customer_id": customer_id, "data": data, "created_at": now,
            "dispatched": False}


def record_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Write many events in one statement, in the order given (the worker's batches). Pending
    ORM changes are flushed first, so events keep the order in which they were recorded."""
    if rows:
        session.flush()
        session.connection().execute(insert(Event.__table__), rows)
