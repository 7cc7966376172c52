"""What `creditflow ledger check` last verified: the sums of the ledger up to an entry.

Ledger entries are append-only, so the sums of every entry up to `through_seq` never change
once that entry and every one before it are committed. A check then only needs to add the
entries written since to these sums to prove the accounts and lots it touched; and history
older than the checkpoint could leave the hot table without the proof losing anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.credits import Credits
from creditflow.kit.db import Base, CreditsColumn, UTCDateTime


class AccountSums:
    """A customer's totals over a set of their ledger entries (the columns of a checkpoint's
    account row and of an archive's)."""

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted: Mapped[Credits] = mapped_column(CreditsColumn)
    spent: Mapped[Credits] = mapped_column(CreditsColumn)
    expired: Mapped[Credits] = mapped_column(CreditsColumn)
    held: Mapped[Credits] = mapped_column(CreditsColumn)
    available: Mapped[Credits] = mapped_column(CreditsColumn)


class LotSums:
    """A lot's granted and remaining credits over a set of its ledger entries."""

    lot_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted: Mapped[Credits] = mapped_column(CreditsColumn)
    remaining: Mapped[Credits] = mapped_column(CreditsColumn)


class LedgerCheckpoint(Base):
    """The one row saying how far the ledger has been verified (id is always 1)."""

    __tablename__ = "ledger_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    through_seq: Mapped[int] = mapped_column(BigInteger)  # every entry up to it is summed below
    entries: Mapped[int] = mapped_column(BigInteger)  # how many entries that is
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerCheckpointAccount(AccountSums, Base):
    """One customer's totals over its entries up to the checkpoint."""

    __tablename__ = "ledger_checkpoint_accounts"


class LedgerCheckpointLot(LotSums, Base):
    """One lot's granted and remaining credits over its entries up to the checkpoint."""

    __tablename__ = "ledger_checkpoint_lots"


# --- What `creditflow archive` removed ----------------------------------------------------------


class LedgerArchivedAccount(AccountSums, Base):
    """One customer's sums over their archived ledger entries (exported, then removed). The full
    ledger check starts from them, so that balances still equal all their entries."""

    __tablename__ = "ledger_archived_accounts"

    entries: Mapped[int] = mapped_column(BigInteger, sort_order=1)  # how many archived entries (after the sums)


class LedgerArchivedLot(LotSums, Base):
    """One lot's granted and remaining credits over its archived ledger entries."""

    __tablename__ = "ledger_archived_lots"


class ArchivedMonth(Base):
    """A month of one history table written to an export file by `creditflow archive`.

    `exported`: the file is complete and on disk and its rows (every row of the month numbered
    up to `through_key`) are being removed; `done`: they are gone. A re-run finishes an
    `exported` month from its file and never exports a `done` one again."""

    __tablename__ = "archived_months"
    __table_args__ = (CheckConstraint("status IN ('exported', 'done')", name="status"),)

    table_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM (UTC)
    status: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(BigInteger)
    through_key: Mapped[int] = mapped_column(BigInteger)  # the last seq (or delivery id) exported
    sha256: Mapped[str] = mapped_column(String(64))  # of the file's uncompressed lines
    file: Mapped[str] = mapped_column(String(1000))
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime)
