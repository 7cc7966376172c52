"""Pure ledger arithmetic: which lots pay for a spend, and how a settled hold splits.

No database and no clock: callers pass the lots that are eligible at their `now`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from creditflow.kit.credits import Credits
from creditflow.kit.errors import InsufficientCredits


@dataclass(frozen=True, slots=True)
class Lot:
    """What allocation needs to know about a lot."""

    id: str
    kind: str
    remaining: Credits
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Draw:
    """`amount` taken from (or returned to) one lot."""

    lot_id: str
    kind: str
    amount: Credits


def spend_order(lot: Lot) -> tuple:
    """Soonest-expiring first, never-expiring last, the oldest first among equals (the id
    breaks exact ties, so the order is total and repeatable)."""
    return (lot.expires_at is None, lot.expires_at or lot.created_at, lot.created_at, lot.id)


def allocate(lots: Iterable[Lot], amount: Credits) -> list[Draw]:
    """Draw `amount` from `lots` in spend order; one spend may draw from several lots.

    Raises InsufficientCredits, drawing nothing, when the lots hold less than `amount`.
    """
    if amount.milli <= 0:
        raise ValueError("a spend draws a positive amount")
    ordered = sorted((lot for lot in lots if lot.remaining.milli > 0), key=spend_order)
    available = sum(lot.remaining.milli for lot in ordered)
    if available < amount.milli:
        raise InsufficientCredits(
            f"not enough credits: {amount} needed, {Credits(available)} available for this feature",
            param="amount",
        )
    draws: list[Draw] = []
    left = amount.milli
    for lot in ordered:
        take = min(left, lot.remaining.milli)
        draws.append(Draw(lot.id, lot.kind, Credits(take)))
        left -= take
        if left == 0:
            break
    return draws


def split_settlement(draws: Sequence[Draw], amount: Credits) -> tuple[list[Draw], list[Draw]]:
    """Settle `amount` of a hold: the first draws (soonest-expiring) are spent, the rest go back.

    Returns (spent, returned); together they add up to the draws, lot by lot.
    """
    total = sum(d.amount.milli for d in draws)
    if not 0 <= amount.milli <= total:
        raise ValueError(f"settle amount {amount} outside [0, {Credits(total)}]")
    spent: list[Draw] = []
    returned: list[Draw] = []
    left = amount.milli
    for draw in draws:
        take = min(left, draw.amount.milli)
        left -= take
        if take:
            spent.append(Draw(draw.lot_id, draw.kind, Credits(take)))
        if draw.amount.milli - take:
            returned.append(Draw(draw.lot_id, draw.kind, Credits(draw.amount.milli - take)))
    return spent, returned


def draws_to_json(draws: Sequence[Draw]) -> list[dict]:
    return [{"lot": d.lot_id, "kind": d.kind, "amount": d.amount.milli} for d in draws]


def draws_from_json(data: Sequence[dict]) -> list[Draw]:
    return [Draw(d["lot"], d["kind"], Credits(int(d["amount"]))) for d in data]
