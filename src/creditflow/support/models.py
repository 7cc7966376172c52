"""Support console users, their signed-in sessions, and the audit log of support actions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime

ROLES = ("support", "admin")


class SupportUser(Base):
    """Someone who signs in to the support console. Only a scrypt hash of the password is kept."""

    __tablename__ = "support_users"
    __table_args__ = (CheckConstraint("role IN ('support', 'admin')", name="role"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A console sign-in, kept on the server so that it can be ended: signing out ends it, and
    disabling a user or changing their password ends all of theirs. The signed cookie alone
    can't be taken back (a copy of it stays valid until it expires); with this row gone, the
    cookie leads to the sign-in page. The cookie carries a random token; only its SHA-256 is
    kept, so the table can't be used to sign in."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditRecord(Base):
    """One support action: who, when, what, why, and how it ended.

    Written (and committed) as `pending` before the action runs, so an action that crashes
    half-way still leaves a trace; the outcome is filled in once it is known.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        CheckConstraint("outcome IN ('pending', 'succeeded', 'failed')", name="outcome"),
        Index("ix_audit_records_customer_created", "customer_id", "created_at"),
    )

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    actor_id: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(64))  # the username, kept as it was then
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(500))  # what, in words
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(String(1000))
    outcome: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
