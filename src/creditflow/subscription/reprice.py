"""Moving a cohort (the live subscriptions of one plan and term) to a new price.

Each subscription keeps the price it was sold at until the operator moves it
(`creditflow catalog migrate`). The new price applies from the first renewal at least the
notice period away; a renewal sooner than that is charged the old price once more. Each move
records a `subscription.price_changing` event (the customer's notice email is queued from it).

Idempotent: a subscription already moved to that price, or already paying it, is left alone,
so a second run records nothing and sends nothing. The entry point runs `move_to_price` in one
transaction per subscription, so a run stopped half way is simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog
from creditflow.context import Context
from creditflow.customer.service import customer_now
from creditflow.kit.clock import format_instant
from creditflow.kit.errors import InvalidRequest
from creditflow.subscription.models import Subscription
from creditflow.subscription.price import first_renewal_from, sold_price
from creditflow.subscription.status import record_change

# What became of each subscription of the cohort.
MOVED = "moved"
ALREADY = "already"  # moved to this price before, or already paying it
ENDING = "ending"  # cancelled at the end of its term: no renewal to price
LEAVING = "leaving"  # a scheduled change takes it to another plan or term at its renewal
GONE = "gone"  # no longer in the cohort (ended or changed since it was listed)


@dataclass(frozen=True)
class PriceMove:
    plan: str
    term: str
    price: int
    notice_days: int


def price_move(catalog: Catalog, plan: str, term: str, price: int | None, notice_days: int) -> PriceMove:
    """Check the operator's request: a known plan and term, a price (default: the catalog's
    price for them today), and a notice of zero days or more."""
    plan_def = catalog.plan(plan)
    term_def = catalog.term(term)
    current = plan_def.price(term_def)
    if price is None:
        price = current
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise InvalidRequest(f"price must be a whole number of minor units, 0 or more, got {price!r}", param="price")
    if isinstance(notice_days, bool) or not isinstance(notice_days, int) or notice_days < 0:
        raise InvalidRequest(f"notice days must be 0 or more, got {notice_days!r}", param="notice_days")
    return PriceMove(plan_def.code, term_def.value, price, notice_days)


def cohort(session: Session, plan: str, term: str) -> list[str]:
    """The live subscriptions on `plan` and `term` (active or past due), oldest first."""
    return list(session.scalars(select(Subscription.id).where(
        Subscription.plan == plan, Subscription.term == term, Subscription.status.in_(("active", "past_due")))
        .order_by(Subscription.created_at, Subscription.id)))


def move_to_price(ctx: Context, session: Session, subscription_id: str, move: PriceMove) -> str:
    """Move one subscription of the cohort to the new price, from its first renewal at least
    the notice period away; say what became of it (MOVED, ALREADY, ENDING, LEAVING, GONE)."""
    sub = session.get(Subscription, subscription_id, with_for_update=True, populate_existing=True)
    if sub is None or (sub.plan, sub.term) != (move.plan, move.term) or sub.status not in ("active", "past_due"):
        return GONE
    if sub.price is None:  # from before prices were kept: what it was sold at is the catalog's today
        sub.price = sold_price(sub, ctx.catalog)
    if sub.next_price == move.price or (sub.next_price is None and sub.price == move.price):
        return ALREADY
    if sub.price == move.price:  # back to what it pays: the pending move is called off
        sub.next_price = sub.next_price_from = None
        record_change(ctx, session, sub, now=customer_now(ctx, session, sub.customer_id))
        return ALREADY
    if sub.cancel_at_period_end:
        return ENDING
    if sub.scheduled_plan is not None:
        return LEAVING
    now = customer_now(ctx, session, sub.customer_id)
    effective = first_renewal_from(sub, now + timedelta(days=move.notice_days))
    old = sub.price
    sub.next_price, sub.next_price_from = move.price, effective
    record_change(ctx, session, sub, now=now, event="subscription.price_changing", data={
        "subscription": sub.id, "plan": sub.plan, "term": sub.term, "old_price": old, "new_price": move.price,
        "currency": ctx.catalog.currency, "effective_at": format_instant(effective),
        "notice_days": move.notice_days})
    return MOVED

