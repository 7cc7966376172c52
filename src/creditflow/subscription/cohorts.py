"""Subscriptions grouped by plan and term: how many are on each (for `catalog diff` and the
service's start), and filling in the prices of rows from before prices were kept."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from creditflow.catalog.diff import Stranded, stranded
from creditflow.catalog.models import Catalog
from creditflow.kit.errors import Conflict
from creditflow.subscription.models import LIVE_STATUSES, Subscription


def live_counts(session: Session) -> Counter[tuple[str, str]]:
    """Live subscriptions (a first payment in flight included) per plan and term they are on."""
    rows = session.execute(select(Subscription.plan, Subscription.term, func.count())
                           .where(Subscription.status.in_(LIVE_STATUSES))
                           .group_by(Subscription.plan, Subscription.term))
    return Counter({(plan, term): count for plan, term, count in rows})


def scheduled_counts(session: Session) -> Counter[tuple[str, str]]:
    """Live subscriptions per plan and term a scheduled change will move them to."""
    rows = session.execute(select(Subscription.scheduled_plan, Subscription.scheduled_term, func.count())
                           .where(Subscription.status.in_(LIVE_STATUSES), Subscription.scheduled_plan.is_not(None))
                           .group_by(Subscription.scheduled_plan, Subscription.scheduled_term))
    return Counter({(plan, term): count for plan, term, count in rows})


def stranded_by(session: Session, catalog: Catalog) -> list[Stranded]:
    """Who `catalog` would leave without a plan: live subscriptions on a plan or term it no
    longer has, or scheduled to move to one."""
    return stranded(catalog, live_counts(session) + scheduled_counts(session))


class CatalogStrandsSubscribers(Conflict, code="catalog_strands_subscribers"):
    """A new catalog would leave subscribers on a plan or term it no longer has."""

    def __init__(self, source: str, found: list[Stranded]):
        self.found = found
        lines = "; ".join(item.sentence() for item in found)
        super().__init__(
            f"{source}: {lines}. Put the plan (or term) back in the file, with `on_sale: false` to stop "
            f"selling it, or move those subscriptions to another plan first.", param="plan")


def check_catalog_serves(session: Session, catalog: Catalog) -> None:
    """Refuse a catalog that would strand live subscriptions (CatalogStrandsSubscribers)."""
    found = stranded_by(session, catalog)
    if found:
        raise CatalogStrandsSubscribers(catalog.source, found)


def fill_unset_prices(session: Session, catalog: Catalog) -> int:
    """Live subscriptions without a price as sold (rows from before prices were kept) get the
    catalog's price for their plan and term. A conditional update per plan and term: safe
    when several processes start at once, and a no-op once done."""
    filled = 0
    for plan in catalog.plans.values():
        for term, amount in plan.prices.items():
            result = session.execute(
                update(Subscription)
                .where(Subscription.plan == plan.code, Subscription.term == term.value,
                       Subscription.price.is_(None), Subscription.status.in_(LIVE_STATUSES))
                .values(price=amount)
                .execution_options(synchronize_session=False))
            filled += result.rowcount or 0
            session.execute(  # a change scheduled before prices were kept: sold at today's price too
                update(Subscription)
                .where(Subscription.scheduled_plan == plan.code, Subscription.scheduled_term == term.value,
                       Subscription.scheduled_price.is_(None), Subscription.status.in_(LIVE_STATUSES))
                .values(scheduled_price=amount)
                .execution_options(synchronize_session=False))
    return filled
