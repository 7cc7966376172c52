"""What the console shows that the billing page doesn't: customer search, recent customers, and
the downgrades support may make at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog, Plan
from creditflow.catalog.rules import classify_change
from creditflow.customer.models import Customer
from creditflow.events.models import Event
from creditflow.kit.errors import CreditflowError
from creditflow.subscription.models import Subscription
from creditflow.subscription.options import change_refusal
from creditflow.web.rendering import Formatter


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


def recent_customers(session: Session, *, limit: int = 10) -> list[Customer]:
    """The newest customers, for the console's home page."""
    return list(session.scalars(select(Customer).order_by(Customer.created_at.desc(), Customer.id.desc()).limit(limit)))


@dataclass(frozen=True)
class EventLine:
    at: datetime
    type: str
    summary: str


def recent_events(session: Session, customer_id: str, fmt: Formatter, *, limit: int = 20) -> list[EventLine]:
    """The customer's latest events, newest first, each with its data in a line, its dates,
    money and credits written as everywhere else on the console."""
    rows = session.scalars(select(Event).where(Event.customer_id == customer_id)
                           .order_by(Event.seq.desc()).limit(limit))
    return [EventLine(event.created_at, event.type, _summary(event.data or {}, fmt)) for event in rows]


# Event fields that hold money (integer minor units of the catalog's currency) or credits.
_MONEY = frozenset({"amount", "amount_charged", "amount_due_then", "amount_paid", "total", "to_account_balance",
                    "old_price", "new_price"})
_CREDITS = frozenset({"credits", "amount", "balance", "available"})
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _summary(data: dict, fmt: Formatter) -> str:
    """`plan: basic, ends_at: 28 Feb 2026, 10:00 UTC`: the event's plain values (nested ones
    left out)."""
    if isinstance(data.get("summary"), str):
        return data["summary"]
    parts = []
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)) or key == "customer":
            continue
        parts.append(f"{key}: {_value(key, value, fmt, data.get('currency'))}")
    return ", ".join(parts)[:300]


def _value(key: str, value, fmt: Formatter, currency: str | None) -> str:
    try:
        if isinstance(value, int) and key in _MONEY:
            return fmt.money(value, currency)
        if isinstance(value, str) and _INSTANT.match(value):
            return fmt.datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        if isinstance(value, str) and key in _CREDITS:
            return fmt.credits(value)
    except (ValueError, CreditflowError):
        pass
    return str(value)


def downgrade_options(catalog: Catalog, sub: Subscription | None) -> list[tuple[Plan, str]]:
    """What support may move an active subscription down to, immediately (a self-service downgrade
    waits for the end of the term; support may make it at once): plans and terms, which the
    customer page offers as `plan:term` (the form's value `customers.py` reads)."""
    if sub is None or change_refusal(sub) is not None:
        return []
    options = []
    for plan in catalog.plans_by_rank():
        for term in plan.terms:
            if (plan.code, term.value) == (sub.plan, sub.term) or not plan.on_sale:  # off sale: not sold
                continue
            try:
                decision = classify_change(catalog, sub.plan, sub.term, plan.code, term)
            except CreditflowError:
                continue
            if decision.kind == "downgrade" and decision.allows("immediate", support=True):
                options.append((plan, term.value))
    return options

