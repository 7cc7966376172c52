from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.credits import Credits
from creditflow.kit.db import Base, CreditsColumn, UTCDateTime

LOT_KINDS = ("free", "subscription", "top_up", "promo")
ENTRY_KINDS = ("grant", "spend", "expire", "refund", "hold", "release", "settle")


class CreditAccount(Base):
    """Running totals per customer, kept in step with the ledger entries (SPEC K6).

    It is also the row a spend locks, so that spends of one customer serialise while spends
    of different customers run in parallel.
    """

    __tablename__ = "credit_accounts"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    granted: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    spent: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    expired: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    held: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    available: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))


class CreditLot(Base):
    """Credits granted together, spent down over time, and expiring together."""

    __tablename__ = "credit_lots"
    __table_args__ = (
        Index(
            "ix_credit_lots_open",
            "customer_id",
            "expires_at",
            sqlite_where=text("remaining > 0"),
            postgresql_where=text("remaining > 0"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    granted: Mapped[Credits] = mapped_column(CreditsColumn)
    remaining: Mapped[Credits] = mapped_column(CreditsColumn)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    subscription_id: Mapped[str | None] = mapped_column(String(40), index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(40))
    # Makes a grant happen at most once: e.g. "sub:<id>:<period start>", "free:<cus>:<date>".
    grant_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CreditEntry(Base):
    """One append-only ledger line. `amount` is always positive; `kind` says which way."""

    __tablename__ = "credit_entries"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    lot_id: Mapped[str | None] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Credits] = mapped_column(CreditsColumn)
    reference: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
