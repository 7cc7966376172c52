"""What the console shows that the billing page doesn't: customer search, the downgrades
support may make at once, and the unused value of the current term."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog, Plan
from creditflow.catalog.rules import classify_change
from creditflow.customer.models import Customer
from creditflow.kit.errors import CreditflowError
from creditflow.subscription.models import Subscription


def find_customers(session: Session, query: str, *, limit: int = 25) -> list[Customer]:
    """By id or external id (exact), or by email or name (contains, any case)."""
    query = (query or "").strip()
    if not query:
        return []
    exact = list(session.scalars(select(Customer).where(
        (Customer.id == query) | (Customer.external_id == query))))
    pattern = f"%{query.lower().replace('%', '').replace('_', '')}%"
    like = list(session.scalars(
        select(Customer).where(func.lower(Customer.email).like(pattern) | func.lower(Customer.name).like(pattern))
        .order_by(Customer.created_at.desc()).limit(limit)))
    seen, found = set(), []
    for customer in exact + like:
        if customer.id not in seen:
            seen.add(customer.id)
            found.append(customer)
    return found[:limit]


@dataclass(frozen=True)
class DowngradeOption:
    plan: Plan
    term: str

    @property
    def value(self) -> str:
        return f"{self.plan.code}:{self.term}"

    @property
    def label(self) -> str:
        return f"{self.plan.name} ({self.term})"


def downgrade_options(catalog: Catalog, sub: Subscription | None) -> list[DowngradeOption]:
    """What support may move an active subscription down to, immediately (a self-service downgrade
    waits for the end of the term; support may make it at once)."""
    if sub is None or sub.status != "active":
        return []
    options = []
    for plan in catalog.plans_by_rank():
        for term in plan.terms:
            if (plan.code, term.value) == (sub.plan, sub.term):
                continue
            try:
                decision = classify_change(catalog, sub.plan, sub.term, plan.code, term)
            except CreditflowError:
                continue
            if decision.kind == "downgrade" and decision.allows("immediate", support=True):
                options.append(DowngradeOption(plan, term.value))
    return options


def unused_value(sub: Subscription | None, now: datetime) -> int:
    """What the rest of the current term is worth, prorated to the second: what an immediate change
    credits for the time not used."""
    from creditflow.kit.periods import Period
    from creditflow.subscription.proration import split_term

    if sub is None or sub.status != "active":
        return 0
    return split_term(sub.term_price, Period(sub.current_term_start, sub.current_term_end), now).unused
