"""Plan and top-up credits granted, expired and taken back: the ledger's use cases for the
subscription and purchase packages, all written through the customer's `Book` (the one
writer of lots and entries) under their account lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.credits import repository as repo
from creditflow.credits.book import Book
from creditflow.kit.credits import Credits


@dataclass(frozen=True)
class PlanGrant:
    """A month's plan credits for a subscription; `grant_key` makes it happen at most once."""

    customer_id: str
    subscription_id: str
    amount: Credits
    expires_at: datetime
    grant_key: str


def renew_plan_credits(ctx: Context, session: Session, grants: Sequence[PlanGrant], now: datetime) -> None:
    """Set each subscription's plan credits to the new allotment: what is left of the last one
    expires (plan credits never roll over), then the new one is granted."""
    # The accounts first, then their lots: the order every credit change takes locks in, so a
    # renewal and a spend of the same customer queue instead of deadlocking.
    books = {grant.customer_id: Book.lock(ctx, session, grant.customer_id, now=now)
             for grant in sorted(grants, key=lambda grant: grant.customer_id)}
    live = _live_plan_lots(session, [grant.subscription_id for grant in grants])
    for grant in grants:
        book = books[grant.customer_id]
        _expire(book, live.get(grant.subscription_id, []), now)
        book.grant("subscription", grant.amount, expires_at=grant.expires_at, grant_key=grant.grant_key,
                   subscription_id=grant.subscription_id)
    for book in books.values():
        book.flush()


def expire_plan_credits(ctx: Context, session: Session, customer_id: str, subscription_id: str,
                        now: datetime) -> None:
    """Expire what is left of a subscription's plan credits (it ended, or went past due)."""
    book = Book.lock(ctx, session, customer_id, now=now)
    _expire(book, _live_plan_lots(session, [subscription_id]).get(subscription_id, []), now)
    book.flush()


def grant_top_up(ctx: Context, session: Session, *, customer_id: str, invoice_id: str, credits: Credits,
                 now: datetime) -> str:
    """A paid top-up's credits, which never expire; returns the lot's id. Keyed by the invoice,
    so a payment settled twice grants once."""
    book = Book.lock(ctx, session, customer_id, now=now)
    lot_id = book.grant("top_up", credits, expires_at=None, grant_key=top_up_grant_key(invoice_id),
                        invoice_id=invoice_id)
    book.flush()
    return lot_id


def top_up_grant_key(invoice_id: str) -> str:
    return f"topup:{invoice_id}"


def take_back_purchase(ctx: Context, session: Session, customer_id: str, invoice_id: str, now: datetime) -> None:
    """A refunded purchase's unspent credits expire (what was spent stays spent)."""
    book = Book.lock(ctx, session, customer_id, now=now)
    lot_ids = list(session.connection().scalars(
        select(repo.lots.c.id).where(repo.lots.c.invoice_id == invoice_id, repo.lots.c.expired_at.is_(None))
        .order_by(repo.lots.c.id).with_for_update()))
    _expire(book, lot_ids, now)
    book.flush()


def set_active_plan(ctx: Context, session: Session, customer_id: str, plan: str | None) -> None:
    """Record the plan the customer's active subscription is on (None: Free, or past due), which
    decides what their spends may pay for."""
    book = Book.lock(ctx, session, customer_id)  # the account opened if need be, and locked
    if book.account.plan != plan:
        repo.set_plan(book.cursor, customer_id, plan)
        book.account.plan = plan


def _expire(book: Book, lot_ids: list[str], now: datetime) -> None:
    book.ensure_lots(lot_ids)
    for lot_id in lot_ids:
        book.expire(lot_id, at=now)


def _live_plan_lots(session: Session, subscription_ids: list[str]) -> dict[str, list[str]]:
    live: dict[str, list[str]] = {}
    for lot in session.connection().execute(
            select(repo.lots.c.id, repo.lots.c.subscription_id).where(
                repo.lots.c.subscription_id.in_(sorted(subscription_ids)), repo.lots.c.kind == "subscription",
                repo.lots.c.expired_at.is_(None)).order_by(repo.lots.c.id).with_for_update()):
        live.setdefault(lot.subscription_id, []).append(lot.id)
    return live
