from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime, partial_index
from creditflow.kit.db.partitions import only_on

# A row number that must not run out: bigint on PostgreSQL; on SQLite INTEGER, which is 64-bit
# there and, as a primary key, the rowid that numbers new rows.
BigSeq = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """The outbox: written in the transaction that made the change it describes.

    On PostgreSQL partitioned by month of `created_at` (migration 0015, kit/db/partitions.py):
    the primary key there is (seq, created_at) and `id` is unique with `created_at`.
    """

    __tablename__ = "events"
    __table_args__ = (
        # The worker's fan-out to webhook endpoints looks for these only.
        partial_index("ix_events_undispatched", "seq", where="dispatched = false", sqlite_where="dispatched = 0"),
        # A customer's events in order: a page of them without sorting the customer's history.
        Index("ix_events_customer_seq", "customer_id", "seq"),
        partial_index("ix_events_unnotified", "seq", where="notified = false", sqlite_where="notified = 0"),
        only_on("sqlite", UniqueConstraint("id")),
        only_on("postgresql", UniqueConstraint("id", "created_at")),
    )

    seq: Mapped[int] = mapped_column(BigSeq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set once the event has a delivery row for every webhook endpoint that wants it. A flag
    # rather than a cursor on `seq`: PostgreSQL transactions commit out of `seq` order.
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set once the worker has queued the emails the event calls for (notify/service.py).
    notified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(100))  # needed in clear to sign deliveries
    # Event types wanted; null means every type.
    events: Mapped[list | None] = mapped_column(JSON)
    # Events up to this sequence number existed before the endpoint and are not sent to it.
    after_seq: Mapped[int] = mapped_column(BigSeq)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events or "*" in self.events


class WebhookDelivery(Base):
    """One event to send to one endpoint, retried until acknowledged or given up after 3 days.

    Deliveries of one customer's events to one endpoint go out in event order: a delivery is
    only attempted once every earlier one of the same customer and endpoint is settled.

    On PostgreSQL partitioned by month of `created_at` (migration 0015): the primary key there is
    (id, created_at), and one delivery per event and endpoint is unique with `created_at` (the
    fan-out creates an event's deliveries once, in the transaction that marks it dispatched).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        only_on("sqlite", UniqueConstraint("endpoint_id", "event_seq")),
        only_on("postgresql", UniqueConstraint("endpoint_id", "event_seq", "created_at")),
        partial_index("ix_webhook_deliveries_pending_order", "endpoint_id", "customer_id", "event_seq",
                      where="status = 'pending'"),
        partial_index("ix_webhook_deliveries_pending_due", "next_attempt_at", where="status = 'pending'"),
        # What the purge job deletes: settled deliveries, oldest first.
        partial_index("ix_webhook_deliveries_settled", "completed_at", where="status <> 'pending'"),
    )

    id: Mapped[int] = mapped_column(BigSeq, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_seq: Mapped[int] = mapped_column(BigSeq)
    event_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
