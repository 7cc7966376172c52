"""What `creditflow ledger check` last verified: the sums of the ledger up to an entry.

Ledger entries are append-only, so the sums of every entry up to `through_seq` never change
once that entry and every one before it are committed. A check then only needs to add the
entries written since to these sums to prove the accounts and lots it touched; and history
older than the checkpoint could leave the hot table without the proof losing anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.credits import Credits
from creditflow.kit.db import Base, CreditsColumn, UTCDateTime


class LedgerCheckpoint(Base):
    """The one row saying how far the ledger has been verified (id is always 1)."""

    __tablename__ = "ledger_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    through_seq: Mapped[int] = mapped_column(BigInteger)  # every entry up to it is summed below
    entries: Mapped[int] = mapped_column(BigInteger)  # how many entries that is
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerCheckpointAccount(Base):
    """One customer's totals over its entries up to the checkpoint."""

    __tablename__ = "ledger_checkpoint_accounts"

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted: Mapped[Credits] = mapped_column(CreditsColumn)
    spent: Mapped[Credits] = mapped_column(CreditsColumn)
    expired: Mapped[Credits] = mapped_column(CreditsColumn)
    held: Mapped[Credits] = mapped_column(CreditsColumn)
    available: Mapped[Credits] = mapped_column(CreditsColumn)


class LedgerCheckpointLot(Base):
    """One lot's granted and remaining credits over its entries up to the checkpoint."""

    __tablename__ = "ledger_checkpoint_lots"

    lot_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted: Mapped[Credits] = mapped_column(CreditsColumn)
    remaining: Mapped[Credits] = mapped_column(CreditsColumn)
