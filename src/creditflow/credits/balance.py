"""Reading credits: the balance (free credits for today included, even before they exist as a
lot) and the ledger entries. Read-only: nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.credits import repository as repo
from creditflow.credits.access import Standing, free_day, gets_free_credits, reset_timezone
from creditflow.credits.ledger import draws_from_json, spend_order, Lot
from creditflow.credits.models import LOT_KINDS, CreditEntry
from creditflow.kit.credits import Credits
from creditflow.kit.errors import InvalidRequest, NotFound
from creditflow.kit.ids import made_at


@dataclass(frozen=True)
class LotBalance:
    id: str  # today's free credits have theirs before they are first used (and so written)
    kind: str
    granted: Credits
    remaining: Credits
    expires_at: datetime | None


@dataclass(frozen=True)
class Balance:
    customer_id: str
    available: Credits
    held: Credits
    by_kind: dict[str, Credits]
    lots: tuple[LotBalance, ...]  # in spend order
    as_of: datetime


def get_balance(ctx: Context, session: Session, customer_id: str) -> Balance:
    """What the customer can spend now. Work the worker hasn't done yet is accounted as done:
    lots past their expiry don't count, holds past theirs are back in their lots, and today's
    free credits count whether or not they have been created."""
    cursor = repo.UnitCursor.of(session)
    account = repo.read_account(cursor, customer_id)
    now = account.clock_time or ctx.clock.now()
    standing = Standing(account.plan)
    rows = {row.id: row for row in repo.open_lots(cursor, customer_id)}
    remaining = {lot_id: row.remaining.milli for lot_id, row in rows.items()}
    held = account.totals["held"]
    if held > 0:
        for hold in repo.overdue_holds(cursor, customer_id, now):
            held -= hold.amount.milli
            for draw in draws_from_json(hold.draws):
                if draw.lot_id not in rows:
                    for row in repo.lots_by_id(cursor, customer_id, [draw.lot_id]):
                        rows[row.id] = row
                        remaining[row.id] = 0
                remaining[draw.lot_id] += draw.amount.milli
    lots = [
        LotBalance(row.id, row.kind, row.granted, Credits(remaining[row.id]), row.expires_at)
        for row in rows.values()
        if remaining[row.id] > 0 and row.expired_at is None and (row.expires_at is None or row.expires_at > now)
    ]
    if gets_free_credits(ctx.catalog, standing):
        day = free_day(now, reset_timezone(ctx.catalog, account.timezone))
        if account.free_day != day.key:
            daily = ctx.catalog.free.daily_credits
            lots.append(LotBalance(day.lot_id(customer_id), "free", daily, daily, day.ends_at))
    lots.sort(key=lambda lot: spend_order(Lot(lot.id, lot.kind, lot.remaining, lot.expires_at,
                                              rows[lot.id].created_at if lot.id in rows else now)))
    # `earned` (credits received by a transfer) shows only for a customer who has some.
    by_kind = {kind: Credits(sum(lot.remaining.milli for lot in lots if lot.kind == kind)) for kind in LOT_KINDS
               if kind != "earned" or any(lot.kind == kind for lot in lots)}
    return Balance(customer_id, Credits(sum(lot.remaining.milli for lot in lots)), Credits(held), by_kind,
                   tuple(lots), now)


@dataclass(frozen=True)
class Entry:
    id: str
    customer_id: str
    kind: str
    amount: Credits
    lot_id: str | None
    reference: str | None
    created_at: datetime


@dataclass(frozen=True)
class EntryPage:
    data: tuple[Entry, ...]
    has_more: bool


LATER_ENTRIES_MARGIN = timedelta(days=1)


def list_entries(session: Session, customer_id: str, *, limit: int = 20, starting_after: str | None = None) -> EntryPage:
    """The customer's ledger entries, oldest first, `limit` (1-100) at a time after the entry
    `starting_after`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise InvalidRequest("limit must be between 1 and 100", param="limit")
    entries = CreditEntry.__table__
    account = repo.read_account(repo.UnitCursor.of(session), customer_id)  # NotFound for an unknown customer
    query = select(entries).where(entries.c.customer_id == customer_id)
    if starting_after is not None:
        real_time = account.test_clock_id is None
        after = _cursor_entry(session, customer_id, starting_after, real_time)
        query = query.where(entries.c.seq > after.seq)
        if real_time:
            # A customer on real time wrote their later entries later, give or take the moments
            # between reading the clock and writing: saying so lets PostgreSQL skip the months
            # before the cursor's (ledger entries are partitioned by month of created_at).
            query = query.where(entries.c.created_at >= after.created_at - LATER_ENTRIES_MARGIN)
    rows = session.execute(query.order_by(entries.c.seq).limit(limit + 1)).all()
    data = tuple(Entry(r.id, r.customer_id, r.kind, r.amount, r.lot_id, r.reference, r.created_at)
                 for r in rows[:limit])
    return EntryPage(data, len(rows) > limit)


def _cursor_entry(session: Session, customer_id: str, entry_id: str, real_time: bool):
    """The `starting_after` entry's number and time. For a customer on real time its id says
    when it was written, give or take the margin, so the look-up reads that month (or two)
    instead of every month's index of ids; an id that says nothing useful (or a row that isn't
    where it says) falls back to every month."""
    entries = CreditEntry.__table__
    by_id = select(entries.c.seq, entries.c.created_at).where(
        entries.c.id == entry_id, entries.c.customer_id == customer_id)
    made = made_at(entry_id) if real_time else None
    found = None if made is None else session.execute(by_id.where(entries.c.created_at.between(
        made - LATER_ENTRIES_MARGIN, made + LATER_ENTRIES_MARGIN))).first()
    found = found or session.execute(by_id).first()
    if found is None:
        raise NotFound(f"no such ledger entry: {entry_id}", param="starting_after")
    return found
