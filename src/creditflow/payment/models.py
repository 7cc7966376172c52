from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime, partial_index


class PaymentAttempt(Base):
    """One try at collecting an invoice.

    Written and committed as `pending` before the gateway is called, then moved to
    `succeeded`, `failed` or `unknown`. Its id is the gateway idempotency key, so asking the
    gateway again for the same attempt can never charge twice.
    """

    __tablename__ = "payment_attempts"
    __table_args__ = (
        partial_index("ix_payment_attempts_unsettled", "created_at", where="status IN ('pending','unknown')"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    test_clock_id: Mapped[str | None] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    payment_method: Mapped[str | None] = mapped_column(String(255))
    gateway_reference: Mapped[str | None] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SandboxCharge(Base):
    """The sandbox gateway's own book of charges, keyed by idempotency key.

    Kept in the database (in its own transactions, as if it were a remote service) so that
    every API and worker process sees the same sandbox.
    """

    __tablename__ = "sandbox_charges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    customer_ref: Mapped[str] = mapped_column(String(255), index=True)
    payment_method: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # succeeded, failed
    failure_code: Mapped[str | None] = mapped_column(String(64))
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SandboxRefund(Base):
    """The sandbox's refunds, keyed by idempotency key so a retried refund pays out once."""

    __tablename__ = "sandbox_refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    charge_id: Mapped[str] = mapped_column(String(40), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
