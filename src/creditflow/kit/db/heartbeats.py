"""Worker heartbeats: each worker process records when it last ran, so that a readiness check
(and an operator) can tell whether any worker is alive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from creditflow.kit.db.base import Base, UTCDateTime


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


def beat(session: Session, worker_id: str, now: datetime) -> None:
    """Record that `worker_id` ran at `now` (one row per worker process, updated in place)."""
    if session.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id)
                       .values(last_seen_at=now)).rowcount == 0:
        session.add(WorkerHeartbeat(worker_id=worker_id[:100], last_seen_at=now))


def last_beat(session: Session) -> datetime | None:
    """When any worker last ran."""
    return session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
