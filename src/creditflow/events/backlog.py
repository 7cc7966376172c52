"""How much of the outbox is waiting, for monitoring: events not yet fanned out to webhook
endpoints, and webhook deliveries not yet acknowledged (nor given up).

Each query reads only the waiting rows, through the partial indexes that the worker itself uses
(`ix_events_undispatched`, `ix_webhook_deliveries_pending_due`), never the delivered history,
and counts at most `COUNT_CAP` rows so that a scrape stays cheap however far behind things are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from creditflow.events.models import Event, WebhookDelivery

COUNT_CAP = 100_000


@dataclass(frozen=True)
class Backlog:
    queue: str  # events | webhook_deliveries
    waiting: int  # at most COUNT_CAP
    oldest_at: datetime | None  # when the oldest waiting one was created


def outbox_backlog(session: Session) -> list[Backlog]:
    undispatched = Event.dispatched == false()
    pending = WebhookDelivery.status == "pending"
    oldest_event = select(func.min(Event.seq)).where(undispatched).scalar_subquery()
    return [
        Backlog("events", _capped_count(session, select(Event.seq).where(undispatched)),
                session.scalar(select(Event.created_at).where(Event.seq == oldest_event))),
        Backlog("webhook_deliveries", _capped_count(session, select(WebhookDelivery.id).where(pending)),
                session.scalar(select(func.min(WebhookDelivery.created_at)).where(pending))),
    ]


def _capped_count(session: Session, query) -> int:
    return session.scalar(select(func.count()).select_from(query.limit(COUNT_CAP).subquery()))
