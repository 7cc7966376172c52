"""Tables of priced generations: daily usage counters (for fast-job limits) and credit transfers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.credits import Credits
from creditflow.kit.db import Base, CreditsColumn, UTCDateTime


class CreditUsage(Base):
    """How many fast jobs of a feature a customer ran on one of their local days.

    Written under the customer's credit account lock by the spend or the settle that makes the
    job, so the count is exact however many requests race (one row per customer, feature, day)."""

    __tablename__ = "credit_usage"
    __table_args__ = (CheckConstraint("fast_used >= 0", name="fast_used_not_negative"),)

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    feature: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # the customer-local date, ISO
    fast_used: Mapped[int] = mapped_column(Integer, default=0)


class CreditTransfer(Base):
    """Credits moved from one customer to another: spent by the sender (a row of kind
    `transfer` in credit_spends, with the same reference) and granted to the receiver as a lot of
    kind `earned`. The reference makes it happen at most once."""

    __tablename__ = "credit_transfers"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(255), unique=True)
    from_customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    to_customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    amount: Mapped[Credits] = mapped_column(CreditsColumn)
    feature: Mapped[str] = mapped_column(String(64))
    spend_id: Mapped[str] = mapped_column(String(40))
    lot_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
