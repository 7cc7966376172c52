"""Recording events in the same transaction as the change they describe (SPEC E1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from creditflow.events.models import Event
from creditflow.kit.ids import new_id


def record_event(
    session: Session, type: str, *, customer_id: str | None, data: dict[str, Any], now: datetime
) -> Event:
    event = Event(id=new_id("evt"), type=type, customer_id=customer_id, data=data, created_at=now)
    session.add(event)
    return event
