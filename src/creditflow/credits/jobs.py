"""Worker job: release holds and expire lots whose time has come.

Only customers with something due are touched: a Free customer who hasn't spent today has no
free lot, so costs nothing. Each customer is one transaction under their account lock; the
work itself is `Book.load()`, the same code that a spend runs first, so it doesn't matter which
of the two gets there first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from creditflow.credits import repository as repo
from creditflow.credits.book import Book, run

BATCH = 500


def _on_clock(query, customer_column, test_clock_id: str | None):
    query = query.join(repo.customers, repo.customers.c.id == customer_column)
    if test_clock_id is None:
        return query.where(repo.customers.c.test_clock_id.is_(None))
    return query.where(repo.customers.c.test_clock_id == test_clock_id)


def _due_customers(session: Session, now: datetime, test_clock_id: str | None) -> list[str]:
    holds = _on_clock(
        select(repo.spends.c.customer_id).where(repo.spends.c.status == "held", repo.spends.c.expires_at <= now),
        repo.spends.c.customer_id, test_clock_id)
    lots = _on_clock(
        select(repo.lots.c.customer_id).where(repo.lots.c.expired_at.is_(None), repo.lots.c.expires_at <= now),
        repo.lots.c.customer_id, test_clock_id)
    return list(session.scalars(select(union(holds, lots).subquery().c[0]).limit(BATCH)))


def expire_due(ctx, now: datetime, test_clock_id: str | None = None) -> int:
    """Run the job once: returns how many customers had something released or expired."""
    done = 0
    while True:
        with ctx.db.transaction(readonly=True) as session:
            customer_ids = _due_customers(session, now, test_clock_id)
        for customer_id in customer_ids:
            run(ctx, lambda cursor: _expire_for(ctx, cursor, customer_id, now))
            done += 1
        if len(customer_ids) < BATCH:
            return done


def _expire_for(ctx, cursor: repo.UnitCursor, customer_id: str, now: datetime) -> None:
    book = Book.lock(ctx, cursor, customer_id, now=now)
    nothing_held = not book.account.totals["held"]
    book.load()
    if nothing_held:
        # Holds of 0 credits (placed inside an unlimited window) hold nothing, so loading a book
        # that holds nothing doesn't look for them: they end here, at their expiry.
        for hold in repo.overdue_holds(cursor, customer_id, now):
            book.resolve_hold(hold.id, "expired", at=hold.expires_at, reference=hold.reference, amount=hold.amount)
    # Lots that ran out before they expired are marked too, so they're not found again.
    for row in repo.overdue_lots(cursor, customer_id, now):
        book.ensure_lots([row.id])
        if book.lots[row.id].expired_at is None:
            book.expire(row.id, at=row.expires_at)
    book.flush()


def next_due(session: Session, test_clock_id: str | None, after: datetime) -> datetime | None:
    """The first instant after `after` when a hold or a lot of the clock's customers expires."""
    holds = _on_clock(select(func.min(repo.spends.c.expires_at)).where(
        repo.spends.c.status == "held", repo.spends.c.expires_at > after), repo.spends.c.customer_id, test_clock_id)
    lots = _on_clock(select(func.min(repo.lots.c.expires_at)).where(
        repo.lots.c.expired_at.is_(None), repo.lots.c.expires_at > after), repo.lots.c.customer_id, test_clock_id)
    candidates = [session.scalar(holds), session.scalar(lots)]
    candidates = [c for c in candidates if c is not None]
    return min(candidates) if candidates else None
