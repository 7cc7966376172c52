"""Holds: reserve credits before a long job, then settle the actual amount or release.

A hold draws from the lots at once (so held credits can't be spent elsewhere) and keeps the
draws; settling spends the soonest-expiring part of them and returns the rest; a hold neither
settled nor released by `expires_at` is released by the worker (or by the next change to the
customer's credits, whichever comes first) and ends `expired`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from creditflow.catalog.models import Feature
from creditflow.context import Context
from creditflow.credits import inputs
from creditflow.credits import repository as repo
from creditflow.credits.access import Standing
from creditflow.credits.book import Book, run
from creditflow.credits.ledger import Draw, draws_from_json, split_settlement
from creditflow.credits.limits import admit, settled
from creditflow.credits.spend import draw_for, take_and_record
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, InvalidRequest, NotFound
from creditflow.kit.ids import new_id
from creditflow.team.usage import charge_member
from creditflow.team.usage import give_back as give_back_usage

DEFAULT_TTL_SECONDS = 3600


@dataclass(frozen=True)
class Hold:
    id: str
    customer_id: str
    reference: str
    amount: Credits  # reserved
    feature: str
    status: str  # held | settled | released | expired
    expires_at: datetime
    settled: Credits | None  # the amount spent, once settled
    draws: tuple[Draw, ...]
    balance: Credits  # available credits right after the hold was placed
    created_at: datetime
    resolved_at: datetime | None
    replayed: bool = False
    queue: str | None = None  # fast | relaxed, for a feature the plan limits (credits/limits.py)


def hold_credits(ctx, customer_id: str, *, amount, feature: str, reference: str,
                 ttl_seconds: int = DEFAULT_TTL_SECONDS, member: str | None = None,
                 free_until: datetime | None = None) -> Hold:
    """Reserve `amount` for `feature` until now + `ttl_seconds`. Idempotent by reference: a repeat
    returns the first hold. Errors as `spend_credits` (a hold is a running job for the plan's
    limits; before `free_until` it reserves 0)."""
    amount = inputs.positive_amount(amount)
    feature_def = ctx.catalog.feature(feature)
    reference = inputs.reference(reference)
    ttl = inputs.ttl_seconds(ttl_seconds)
    customer_id = inputs.identifier(customer_id, "customer")
    return run(ctx, lambda cursor: _hold(ctx, cursor, customer_id, amount, feature_def, reference, ttl,
                                         member=member, free_until=free_until))


def _hold(ctx, cursor: repo.UnitCursor, customer_id: str, amount: Credits, feature: Feature, reference: str,
          ttl: int, *, member: str | None = None, free_until: datetime | None = None) -> Hold:
    book = Book.lock(ctx, cursor, customer_id)
    existing, plan, open_lots = repo.spend_plan_and_lots(cursor, customer_id, reference)
    if existing is not None:
        if existing.kind != "hold" or (existing.amount != amount and existing.amount) or existing.feature != feature.code:
            raise Conflict(f"reference {reference!r} was already used", code="reference_reused", param="reference")
        return _hold_view(existing, customer_id, now=book.now, replayed=True)
    book.load(open_lots)
    admitted = admit(ctx, book, plan, feature, amount, kind="hold", reference=reference, free_until=free_until)
    amount = admitted.amount  # 0 inside an unlimited window
    draws = draw_for(ctx, book, Standing(plan), feature, amount) if amount else []
    hold_id = new_id("hold")
    expires_at = book.now + timedelta(seconds=ttl)
    charge_member(cursor, customer_id, member, amount, spend_id=hold_id, reference=reference, now=book.now)
    take_and_record(book, draws, "hold", hold_id, reference, feature, amount, expires_at=expires_at,
                    queue=admitted.queue)
    return Hold(hold_id, customer_id, reference, amount, feature.code, "held", expires_at, None, tuple(draws),
                book.available, book.now, None, queue=admitted.queue)


def settle_hold(ctx, hold_id: str, *, amount) -> Hold:
    """Spend `amount` (at most the held amount, 0 allowed) of the hold; the rest goes back to
    the lots. Settling again with the same amount returns the hold.

    Errors: NotFound, InvalidRequest (amount over the held amount), Conflict `hold_expired`,
    `hold_released`, `hold_settled` (settled for another amount)."""
    amount = inputs.amount_or_zero(amount)
    hold_id = inputs.identifier(hold_id, "hold")
    return run(ctx, lambda cursor: _settle(ctx, cursor, hold_id, amount))


def _settle(ctx, cursor: repo.UnitCursor, hold_id: str, amount: Credits) -> Hold:
    book, row = _lock_hold(ctx, cursor, hold_id)
    if not row.amount:  # placed inside an unlimited window: the job is free whatever it cost
        amount = row.amount
    if amount > row.amount:
        raise InvalidRequest(f"amount {amount} is more than the {row.amount} held", param="amount")
    status = _status(row, book.now)
    if status == "settled" and row.settled == amount:
        return _hold_view(row, book.customer_id, now=book.now, replayed=True)
    if status != "held":
        raise Conflict(f"the hold is {status}", code=f"hold_{status}", param="hold")
    spent, returned = split_settlement(draws_from_json(row.draws), amount)
    book.load()
    book.ensure_lots(d.lot_id for d in returned)
    book.settle(spent, row.reference)
    book.give_back(returned, "release", row.reference)
    book.resolve_hold(hold_id, "settled", settled=amount, at=book.now, reference=row.reference, amount=row.amount)
    settled(ctx, book, row.feature, row.queue)  # a fast job of the plan's daily limit (unless relaxed)
    book.flush()
    give_back_usage(cursor, book.customer_id, row.reference, row.amount - amount, now=book.now)
    return _hold_view(repo.spend_by_id(cursor, hold_id), book.customer_id, now=book.now)


def release_hold(ctx, hold_id: str) -> Hold:
    """Give every held credit back. Releasing a released or expired hold returns it as it is.

    Errors: NotFound, Conflict `hold_settled`."""
    hold_id = inputs.identifier(hold_id, "hold")
    return run(ctx, lambda cursor: _release(ctx, cursor, hold_id))


def _release(ctx, cursor: repo.UnitCursor, hold_id: str) -> Hold:
    book, row = _lock_hold(ctx, cursor, hold_id)
    status = _status(row, book.now)
    if status == "settled":
        raise Conflict("the hold is settled; refund the spend instead", code="hold_settled", param="hold")
    book.load()  # an overdue hold is released here, as `expired`
    if status == "held":
        book.ensure_lots(d["lot"] for d in row.draws)
        book.give_back(draws_from_json(row.draws), "release", row.reference)
        book.resolve_hold(hold_id, "released", at=book.now, reference=row.reference, amount=row.amount)
        give_back_usage(cursor, book.customer_id, row.reference, None, now=book.now)
    book.flush()
    return _hold_view(repo.spend_by_id(cursor, hold_id), book.customer_id, now=book.now)


def get_hold(ctx: Context, session: Session, hold_id: str) -> Hold:
    cursor = repo.UnitCursor.of(session)
    row = repo.spend_by_id(cursor, hold_id)
    if row is None or row.kind != "hold":
        raise NotFound(f"no such hold: {hold_id}", param="hold")
    account = repo.read_account(cursor, row.customer_id)
    return _hold_view(row, row.customer_id, now=account.clock_time or ctx.clock.now())


def _lock_hold(ctx, cursor: repo.UnitCursor, hold_id: str):
    row = repo.spend_by_id(cursor, hold_id)
    if row is None or row.kind != "hold":
        raise NotFound(f"no such hold: {hold_id}", param="hold")
    book = Book.lock(ctx, cursor, row.customer_id)
    return book, repo.spend_by_id(cursor, hold_id)  # re-read under the lock


def _status(row, now: datetime) -> str:
    """A hold past its expiry is expired, whether or not the worker has released it yet."""
    if row.status == "held" and row.expires_at <= now:
        return "expired"
    return row.status


def _hold_view(row, customer_id: str, *, now: datetime, replayed: bool = False) -> Hold:
    return Hold(row.id, customer_id, row.reference, row.amount, row.feature, _status(row, now), row.expires_at,
                row.settled, tuple(draws_from_json(row.draws)), row.balance_after, row.created_at,
                row.resolved_at or (row.expires_at if _status(row, now) == "expired" else None), replayed, row.queue)
