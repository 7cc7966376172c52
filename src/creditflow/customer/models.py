from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime


class TestClock(Base):
    """A simulated "now" for the customers attached to it (as Stripe's test clocks)."""

    __tablename__ = "test_clocks"
    __test__ = False  # not a pytest class

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    frozen_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The language of the emails sent to the customer (a tag like "de" or "pt-BR"), where the
    # operator's templates have it; None: English.
    language: Mapped[str | None] = mapped_column(String(35))
    test_clock_id: Mapped[str | None] = mapped_column(ForeignKey("test_clocks.id"), index=True)
    # Account balance in minor units owed *to* the customer (unused value of an upgraded term).
    # It pays the next charges first.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str | None] = mapped_column(String(255))
    # The card of `payment_method` as the gateway described it: brand, last4, exp_month, exp_year.
    card: Mapped[dict | None] = mapped_column(JSON)
    # Billing details, copied onto each invoice when it is issued (`customer.billing.bill_to`).
    address: Mapped[dict | None] = mapped_column(JSON)  # line1, line2, city, postal_code, state
    tax_id: Mapped[str | None] = mapped_column(String(64))
    gateway_customer_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
