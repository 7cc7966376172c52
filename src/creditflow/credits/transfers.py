"""Credits moved from one customer to another (a community download pays its creator).

One transaction locks both credit accounts (in id order, so two transfers between the same pair
in opposite directions queue instead of deadlocking), draws the amount from the sender exactly as
a spend of the feature would (the same lots, the same access rules; short: nothing moves) and
grants it to the receiver as a lot of kind `earned` that never expires, which every feature may
use, Free's included. Both sides are written by each customer's `Book`, the one ledger writer, so
`creditflow ledger check` sees the sender's spend and the receiver's grant like any others.

The reference is global: a replay with the same content returns the first transfer; the same
reference for anything else is `reference_reused`. The sender's side is a row of kind
`transfer` in credit_spends (with the same reference), which can't be refunded: the credits are
the receiver's now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from creditflow.credits import inputs
from creditflow.credits import repository as repo
from creditflow.credits.access import Standing
from creditflow.credits.book import Book, run
from creditflow.credits.generation_models import CreditTransfer
from creditflow.credits.ledger import Draw, draws_to_json
from creditflow.credits.spend import draw_for
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, InvalidRequest, NotFound
from creditflow.kit.ids import new_id

transfers = CreditTransfer.__table__
_by_reference = repo.CompiledStatement(select(transfers).where(transfers.c.reference == bindparam("reference")))
_insert = repo.CompiledStatement(insert(transfers).inline())


@dataclass(frozen=True)
class Transfer:
    id: str
    reference: str
    sender: str
    receiver: str
    amount: Credits
    feature: str
    draws: tuple[Draw, ...]  # what the sender's lots paid (empty on a replay)
    lot_id: str  # the receiver's `earned` lot
    created_at: datetime
    replayed: bool = False


def transfer_credits(ctx, *, sender: str, receiver: str, amount, feature: str, reference: str) -> Transfer:
    """Move `amount` from `sender` to `receiver`, atomically and at most once per reference.

    Errors: InvalidRequest (amount, feature, reference, the same customer on both sides),
    NotFound (either customer), Forbidden (the sender's plan doesn't include the feature),
    InsufficientCredits (nothing moved), Conflict `reference_reused`."""
    amount = inputs.positive_amount(amount)
    feature_def = ctx.catalog.feature(feature)
    reference = inputs.reference(reference)
    sender = inputs.identifier(sender, "from")
    receiver = inputs.identifier(receiver, "to")
    if sender == receiver:
        raise InvalidRequest("a transfer needs two different customers", param="to")
    return run(ctx, lambda cursor: _transfer(ctx, cursor, sender, receiver, amount, feature_def, reference))


def _transfer(ctx, cursor: repo.UnitCursor, sender: str, receiver: str, amount: Credits, feature, reference: str):
    books = {}
    for customer_id in sorted((sender, receiver)):
        try:
            books[customer_id] = Book.lock(ctx, cursor, customer_id)
        except NotFound:
            raise NotFound(f"no such customer: {customer_id}",
                           param="from" if customer_id == sender else "to") from None
    existing = _by_reference.first(cursor, {"reference": reference})
    if existing is not None:
        if (existing.from_customer_id, existing.to_customer_id, existing.amount, existing.feature) != (
                sender, receiver, amount, feature.code):
            raise Conflict(f"reference {reference!r} was already used for another transfer",
                           code="reference_reused", param="reference")
        return _view(existing, replayed=True)
    payer, payee = books[sender], books[receiver]
    used, plan, open_lots = repo.spend_plan_and_lots(cursor, sender, reference)
    if used is not None:
        raise Conflict(f"reference {reference!r} was already used by the sender for a {used.kind}",
                       code="reference_reused", param="reference")
    payer.load(open_lots)
    draws = draw_for(ctx, payer, Standing(plan), feature, amount)
    transfer_id, spend_id = new_id("trf"), new_id("spd")
    payer.take(draws, "spend", reference)
    payer.record("credits.transferred", {"transfer": transfer_id, "reference": reference, "to": receiver,
                                         "feature": feature.code, "amount": str(amount),
                                         "balance": str(payer.available)})
    payer.flush()
    repo.insert_spend(
        cursor, id=spend_id, customer_id=sender, kind="transfer", reference=reference, feature=feature.code,
        amount=amount, settled=None, status="spent", draws=draws_to_json(draws), balance_after=payer.available,
        expires_at=None, created_at=payer.now, resolved_at=None, refunded_at=None, queue=None)
    lot_id = payee.grant("earned", amount, expires_at=None, grant_key=f"transfer:{transfer_id}",
                         reason=f"transfer from {sender}", event_data={"transfer": transfer_id, "from": sender})
    payee.flush()
    _insert.execute(cursor, {"id": transfer_id, "reference": reference, "from_customer_id": sender,
                             "to_customer_id": receiver, "amount": amount, "feature": feature.code,
                             "spend_id": spend_id, "lot_id": lot_id, "created_at": payer.now})
    return Transfer(transfer_id, reference, sender, receiver, amount, feature.code, tuple(draws), lot_id, payer.now)


def _view(row, *, replayed: bool = False) -> Transfer:
    return Transfer(row.id, row.reference, row.from_customer_id, row.to_customer_id, row.amount, row.feature, (),
                    row.lot_id, row.created_at, replayed)


def get_transfer(session: Session, reference: str) -> Transfer:
    row = _by_reference.first(repo.UnitCursor.of(session), {"reference": reference})
    if row is None:
        raise NotFound(f"no transfer with reference {reference!r}", param="reference")
    return _view(row)
