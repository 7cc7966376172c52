"""Promo credits granted by support, with a reason and an optional expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


from creditflow.credits import inputs
from creditflow.credits import repository as repo
from creditflow.credits.book import Book, run
from creditflow.kit.clock import utc
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, InvalidRequest


@dataclass(frozen=True)
class LotView:
    id: str
    customer_id: str
    kind: str
    granted: Credits
    remaining: Credits
    expires_at: datetime | None
    reason: str | None
    created_at: datetime
    replayed: bool = False


def grant_promo_credits(ctx, customer_id: str, *, amount, reason: str, expires_at: datetime | None = None,
                        kind: str = "promo", actor: str | None = None, reference: str | None = None) -> LotView:
    """Grant a `promo` lot. `reason` is required (it is kept on the lot and in the event);
    `expires_at`, if given, must be in the future; `reference` makes a retry return the first
    grant. Errors: InvalidRequest (amount, reason, kind, expires_at, reference), NotFound,
    Conflict `reference_reused`."""
    if kind != "promo":
        raise InvalidRequest("support grants are of kind 'promo'", param="kind")
    amount = inputs.positive_amount(amount)
    reason = inputs.text(reason, "reason", max_length=500)
    if expires_at is not None:
        expires_at = utc(inputs.aware(expires_at, "expires_at"))
    reference = inputs.optional_reference(reference)
    customer_id = inputs.identifier(customer_id, "customer")
    return run(ctx, lambda cursor: _grant(ctx, cursor, customer_id, amount, reason, expires_at, actor, reference))


def _grant(ctx, cursor: repo.UnitCursor, customer_id, amount, reason, expires_at, actor, reference) -> LotView:
    book = Book.lock(ctx, cursor, customer_id)
    grant_key = f"promo:{customer_id}:{reference}" if reference is not None else None
    if grant_key is not None:
        row = repo.lot_by_grant_key(cursor, grant_key)
        if row is not None:
            if row.granted != amount or row.expires_at != expires_at:
                raise Conflict(f"reference {reference!r} was used for another grant", code="reference_reused",
                               param="reference")
            return _view(row, replayed=True)
    if expires_at is not None and expires_at <= book.now:
        raise InvalidRequest("expires_at must be in the future", param="expires_at")
    book.load()
    lot_id = book.grant("promo", amount, expires_at=expires_at, grant_key=grant_key, reason=reason,
                        event_data={"reason": reason, "actor": actor})
    book.flush()
    return _view(repo.lot(cursor, lot_id))


def _view(row, *, replayed: bool = False) -> LotView:
    return LotView(row.id, row.customer_id, row.kind, row.granted, row.remaining, row.expires_at, row.reason,
                   row.created_at, replayed)
