"""Time proration, pure: what the unused part of a paid term is worth, to the second."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from creditflow.kit.money import prorate
from creditflow.kit.periods import Period


@dataclass(frozen=True)
class TermSplit:
    """A paid term cut at an instant: the value of the time used and of the time left.

    `used + unused == paid` exactly: the unused part is rounded (half up, through the one
    rounding function) and the used part is what remains, so no minor unit is created or lost.
    """

    paid: int
    used: int
    unused: int
    seconds_used: int
    seconds_left: int


def split_term(paid: int, term: Period, at: datetime) -> TermSplit:
    """Split what was paid for `term` at the instant `at`, clamped to the term."""
    total = term.seconds
    left = int((term.end - max(min(at, term.end), term.start)).total_seconds())
    unused = prorate(paid, left, total)
    return TermSplit(paid=paid, used=paid - unused, unused=unused, seconds_used=total - left, seconds_left=left)


@dataclass(frozen=True)
class UpgradeCharge:
    balance_applied: int
    amount_due: int
    to_account_balance: int


def immediate_change_charge(total: int, account_balance: int) -> UpgradeCharge:
    """Settle a change's total (new price, less the credit for unused time, with tax) against
    the account balance: a negative total goes to the balance, and an existing balance pays
    what is owed first."""
    if total <= 0:
        return UpgradeCharge(0, 0, -total)
    applied = min(max(account_balance, 0), total)
    return UpgradeCharge(applied, total - applied, 0)
