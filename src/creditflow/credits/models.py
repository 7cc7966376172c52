from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.credits import Credits
from creditflow.kit.db import Base, CreditsColumn, UTCDateTime, partial_index
from creditflow.kit.db.partitions import only_on

# A row number that must not run out: bigint on PostgreSQL; on SQLite INTEGER, which is 64-bit
# there and, as a primary key, the rowid that numbers new rows.
BigSeq = BigInteger().with_variant(Integer(), "sqlite")

LOT_KINDS = ("free", "subscription", "top_up", "promo", "earned")  # earned: received by a transfer
ENTRY_KINDS = ("grant", "spend", "expire", "refund", "hold", "release", "settle")
SPEND_KINDS = ("spend", "hold", "transfer")  # transfer: credits sent to another customer
SPEND_STATUSES = ("spent", "refunded", "held", "settled", "released", "expired")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CreditAccount(Base):
    """Running totals per customer, kept in step with the ledger entries (granted = spent + expired + held + available).

    It is also the row a spend locks, so that spends of one customer serialise while spends
    of different customers run in parallel.
    """

    __tablename__ = "credit_accounts"
    __table_args__ = (
        CheckConstraint("granted >= 0 AND spent >= 0 AND expired >= 0 AND held >= 0 AND available >= 0",
                        name="totals_not_negative"),
        {"postgresql_with": {"fillfactor": 80}},  # every spend updates it: room for HOT updates
    )

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    granted: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    spent: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    expired: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    held: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    available: Mapped[Credits] = mapped_column(CreditsColumn, default=Credits(0))
    # The customer-local date (ISO) of the last daily free lot created . Free credits
    # are materialised lazily, on the customer's first spend or hold of the day; this saves a
    # lookup on every spend.
    free_day: Mapped[str | None] = mapped_column(String(10))
    # The plan of the customer's active subscription (None: Free), kept by the subscription
    # package through `credits.grants.set_active_plan` with every change of the subscription.
    # What a spend may pay for depends on it; kept here, the ledger reads it with the row it
    # locks instead of reaching up into the subscriptions.
    plan: Mapped[str | None] = mapped_column(String(64))


class CreditLot(Base):
    """Credits granted together, spent down over time, and expiring together."""

    __tablename__ = "credit_lots"
    __table_args__ = (
        # The lots a spend reads: those not yet expired (open lots are a subset: an expired lot
        # is empty). Not `remaining > 0`: a spend changes `remaining` and nothing indexed, so
        # on PostgreSQL its update of the lot is HOT (no index entries written, no index bloat).
        # Lots used up but never expiring (top-ups) stay in it: one per purchase.
        partial_index("ix_credit_lots_open", "customer_id", "expires_at", where="expired_at IS NULL"),
        # What the expiry job scans: lots that will expire and haven't yet.
        partial_index("ix_credit_lots_expiring", "expires_at", where="expired_at IS NULL AND expires_at IS NOT NULL"),
        CheckConstraint("remaining >= 0 AND remaining <= granted", name="remaining_within_granted"),
        CheckConstraint("expired_at IS NULL OR remaining = 0", name="expired_lots_are_empty"),
        CheckConstraint(_in("kind", LOT_KINDS), name="kind"),
        {"postgresql_with": {"fillfactor": 80}},  # room on the page for HOT updates
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
    """One append-only ledger line. `amount` is never negative; `kind` says which way.

    The database refuses UPDATE and DELETE on this table (triggers in the initial migration).

    On PostgreSQL the table is partitioned by month of `created_at` (migration 0015,
    kit/db/partitions.py): its primary key there is (seq, created_at) and `id` is unique with
    `created_at`, as PostgreSQL requires of a partitioned table's keys; `seq` stays the rows'
    identity (one sequence numbers them). `creditflow archive` may drop old months once the
    ledger check has summed them (credits/checkpoint_models.py keeps their sums).
    """

    __tablename__ = "credit_entries"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
        # A customer's entries in order: the ledger page reads a customer's newest entries
        # without sorting their whole history, and the incremental ledger check reads a
        # customer's entries after its checkpoint without reading the ones before.
        Index("ix_credit_entries_customer_seq", "customer_id", "seq"),
        only_on("sqlite", UniqueConstraint("id")),
        only_on("postgresql", UniqueConstraint("id", "created_at")),
    )

    seq: Mapped[int] = mapped_column(BigSeq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    # Not indexed: nothing looks entries up by lot, and every spend writes one or more.
    lot_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Credits] = mapped_column(CreditsColumn)
    reference: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CreditSpend(Base):
    """A spend or a hold, named by the host app's reference.

    Spends and holds share one table so that a reference means one thing per customer: a
    repeat returns the first result, whichever kind it was. `draws` records which lots paid,
    `[{"lot", "kind", "amount"}]` with amounts in thousandths, so a refund or a release can
    put the credits back where they came from.

    Statuses: a spend is `spent` or `refunded`; a hold is `held`, then `settled`, `released`
    or `expired`. A settled hold that is refunded keeps `settled` and gets `refunded_at`.
    """

    __tablename__ = "credit_spends"
    __table_args__ = (
        UniqueConstraint("customer_id", "reference"),
        partial_index("ix_credit_spends_held", "expires_at", where="status = 'held'"),
        # 0: a spend inside an unlimited window, recorded like any other.
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("settled IS NULL OR (settled >= 0 AND settled <= amount)", name="settled_within_amount"),
        CheckConstraint(_in("kind", SPEND_KINDS), name="kind"),
        CheckConstraint(_in("status", SPEND_STATUSES), name="status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(8))
    reference: Mapped[str] = mapped_column(String(255))
    feature: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Credits] = mapped_column(CreditsColumn)
    settled: Mapped[Credits | None] = mapped_column(CreditsColumn)
    status: Mapped[str] = mapped_column(String(16))
    draws: Mapped[list] = mapped_column(JSON)
    # The customer's available credits right after the spend or hold, for replays.
    balance_after: Mapped[Credits] = mapped_column(CreditsColumn)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # fast | relaxed, for a feature the plan limits (credits/limits.py); replays answer it too.
    queue: Mapped[str | None] = mapped_column(String(8))
