from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime, partial_index


class Email(Base):
    """One email to one customer, queued from an event (or a reminder) and sent by the worker.

    `dedupe_key` makes queueing idempotent (one email per event, one reminder per term). The
    `message_id` is fixed when the email is queued, so that the one duplicate a crash between
    sending and recording can cause carries the same Message-ID and is detectable as such.
    """

    __tablename__ = "emails"
    __table_args__ = (
        partial_index("ix_emails_due", "next_attempt_at", where="status IN ('pending', 'sending')"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    to_address: Mapped[str] = mapped_column(String(320))
    data: Mapped[dict] = mapped_column(JSON)
    # pending (to send at next_attempt_at), sending (claimed until next_attempt_at), sent, failed,
    # dropped (what it was about is gone: an invitation accepted or revoked before it left)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_id: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(300))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
