from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime


class Refund(Base):
    """Money given back on an invoice. Committed as `pending` before the gateway is called; its
    id is the gateway idempotency key, so a retried refund never pays out twice."""

    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # pending, succeeded, failed
    # Whether it takes back what the invoice bought: None when the refund that completes the
    # invoice's refund does (the default), else as the caller said. Kept so that a pending
    # refund finished later (by the worker) does what was asked.
    takes_back: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(255))
    gateway_reference: Mapped[str | None] = mapped_column(String(255))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
