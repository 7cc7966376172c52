"""A team's tables: the team, its members, who spent what, and its auto top-up settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.credits import Credits
from creditflow.kit.db import Base, CreditsColumn, UTCDateTime, partial_index

ROLES = ("owner", "admin", "member")
MEMBER_STATUSES = ("invited", "active", "suspended", "removed", "revoked")
# Statuses that belong to the team (a removed member and a revoked invitation no longer do).
CURRENT_STATUSES = ("invited", "active", "suspended")


class Team(Base):
    """A customer that has members. `anchor` is the instant monthly boundaries count from (the
    subscription's, kept by the subscription package; the team's creation before it had one):
    members' monthly usage resets on those boundaries."""

    __tablename__ = "teams"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    anchor: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TeamMember(Base):
    """A seat of a team: the owner's (role `owner`, made with the team), an invitation, or a member.

    `used` is what the member spent in the monthly period that starts at `used_period` (an ISO
    instant: the usage statements compare it as text); a spend in a later period starts again
    from 0. Only the spend path changes it, under the team's credit
    account lock and this row's lock, so it is exact under concurrency."""

    __tablename__ = "team_members"
    __table_args__ = (
        # One current seat per email and per person in a team (a person may be in several teams).
        partial_index("uq_team_members_email", "customer_id", "email", unique=True,
                      where="status IN ('invited', 'active', 'suspended')"),
        partial_index("uq_team_members_external_id", "customer_id", "external_id", unique=True,
                      where="status IN ('invited', 'active', 'suspended') AND external_id IS NOT NULL"),
        CheckConstraint("role IN ('owner', 'admin', 'member')", name="role"),
        CheckConstraint("status IN ('invited', 'active', 'suspended', 'removed', 'revoked')", name="status"),
        CheckConstraint("used >= 0", name="used_not_negative"),
        CheckConstraint("monthly_limit IS NULL OR monthly_limit >= 0", name="limit_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    # Why a suspended member is suspended: `ended` (the subscription ended; restored when the
    # team subscribes again), `downgrade` (the plan has fewer seats) or `admin`.
    suspended_reason: Mapped[str | None] = mapped_column(String(16))
    monthly_limit: Mapped[Credits | None] = mapped_column(CreditsColumn)
    used: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    used_period: Mapped[str | None] = mapped_column(String(32))
    # The invitation link's token, hashed (SHA-256): the link works once, until it expires.
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # removed or revoked
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TeamSpend(Base):
    """Which member made a team's spend or hold (by the host app's reference, as the ledger
    names it), what it counts against their monthly usage and in which period."""

    __tablename__ = "team_spends"
    __table_args__ = (
        UniqueConstraint("customer_id", "reference"),
        CheckConstraint("counted >= 0", name="counted_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the spend's or the hold's id
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    reference: Mapped[str] = mapped_column(String(255))
    member_id: Mapped[str] = mapped_column(ForeignKey("team_members.id"), index=True)
    counted: Mapped[Credits] = mapped_column(CreditsColumn)  # what counts against the member's usage
    period: Mapped[str] = mapped_column(String(32))  # as `TeamMember.used_period`
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AutoTopUp(Base):
    """When the pool's available credits fall below `threshold`, buy `bundle`, at most
    `monthly_max` times a monthly period.

    `armed` is cleared by the purchase it starts and set again once the pool is back at or above
    the threshold, so one crossing buys once. `in_flight_since` is the claim a worker takes
    with a conditional UPDATE before buying (never two purchases at once for a pool);
    `purchases` counts this period's (since `period_start`)."""

    __tablename__ = "auto_top_ups"
    __table_args__ = (
        CheckConstraint("monthly_max >= 0 AND purchases >= 0", name="counts_not_negative"),
        CheckConstraint("threshold >= 0", name="threshold_not_negative"),
    )

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    threshold: Mapped[Credits] = mapped_column(CreditsColumn)
    bundle: Mapped[str] = mapped_column(String(64))
    monthly_max: Mapped[int] = mapped_column(Integer)
    armed: Mapped[bool] = mapped_column(Boolean, default=True)
    in_flight_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    in_flight_reference: Mapped[str | None] = mapped_column(String(120))
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purchases: Mapped[int] = mapped_column(Integer, default=0)
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # purchases ever started: names each one
    last_failure: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
