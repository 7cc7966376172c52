from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime, partial_index

# Statuses in which a customer "has" a subscription. `incomplete` is the internal state of a
# first purchase whose payment is in flight: it holds the one-live-subscription slot so two
# concurrent purchases can't both charge.
LIVE_STATUSES = ("incomplete", "active", "past_due")


class Subscription(Base):
    """A customer's paid plan.

    Calendar state is kept as month offsets from `anchor`: the current term is
    `[anchor + term_start_offset months, anchor + term_end_offset months)` and the current
    credit period is `[anchor + credit_offset, anchor + credit_offset + 1)`. The start/end
    instants are stored too, for queries and for reading, but are always derived from the
    offsets so day clamping never drifts.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        partial_index("uq_subscriptions_live_customer", "customer_id", unique=True,
                      where="status IN ('incomplete','active','past_due')"),
        Index("ix_subscriptions_due", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    test_clock_id: Mapped[str | None] = mapped_column(String(40), index=True)
    plan: Mapped[str] = mapped_column(String(64))
    term: Mapped[str] = mapped_column(String(16))
    # What the current term was bought for (minor units): the base of time proration.
    term_price: Mapped[int] = mapped_column(BigInteger, default=0)
    # The price it was sold at, per charge of its plan and term (minor units, before tax and
    # discounts): what each renewal charges, whatever the catalog file says today. NULL on rows
    # from before prices were kept, meaning "the catalog's current price" until it is filled in
    # (at the service's start, the next renewal, or `catalog migrate`). See subscription/price.py.
    price: Mapped[int | None] = mapped_column(BigInteger)
    # A new price the operator moved it to (`catalog migrate`), charged from the renewal that
    # starts at or after `next_price_from`; until then `price` still applies.
    next_price: Mapped[int | None] = mapped_column(BigInteger)
    next_price_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    anchor: Mapped[datetime] = mapped_column(UTCDateTime)
    term_start_offset: Mapped[int] = mapped_column(Integer, default=0)
    term_end_offset: Mapped[int] = mapped_column(Integer)
    credit_offset: Mapped[int] = mapped_column(Integer, default=0)
    current_term_start: Mapped[datetime] = mapped_column(UTCDateTime)
    current_term_end: Mapped[datetime] = mapped_column(UTCDateTime)
    credit_period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    credit_period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(32))
    scheduled_plan: Mapped[str | None] = mapped_column(String(64))
    scheduled_term: Mapped[str | None] = mapped_column(String(16))
    scheduled_kind: Mapped[str | None] = mapped_column(String(16))
    # The price the scheduled change was sold at (what its renewal charges); NULL: the catalog's.
    scheduled_price: Mapped[int | None] = mapped_column(BigInteger)
    # Dunning: failures so far and when the next retry is due.
    past_due_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The invoice of a renewal in flight (charged or being retried).
    pending_invoice_id: Mapped[str | None] = mapped_column(String(40))
    # When the worker should next look at this subscription; a claim pushes it forward as a
    # lease so that other workers skip it while the claimant works outside a transaction.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    # Bumped on every change; a quote remembers it to detect that it went stale.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Quote(Base):
    """A previewed change. Confirming with it charges exactly `amount_due`, or is
    refused once it expired or the subscription changed (its `version` moved on)."""

    __tablename__ = "quotes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    plan: Mapped[str] = mapped_column(String(64))
    term: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    timing: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount_due: Mapped[int] = mapped_column(BigInteger)
    lines: Mapped[list] = mapped_column(JSON)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_renewal_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_renewal_amount: Mapped[int] = mapped_column(BigInteger)
    credits_after: Mapped[dict] = mapped_column(JSON)
    subscription_version: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
