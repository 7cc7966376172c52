"""Prices as sold: what a subscription is charged, whatever the catalog file says today.

A subscription keeps the price it was sold at for its plan and term (`Subscription.price`),
set when it starts, when it changes plan or term, and when the operator moves its cohort to a
new price (`next_price`, charged from the renewal starting at or after `next_price_from`). A
scheduled change keeps the price it was sold at too (`scheduled_price`). Editing a price in the
catalog therefore changes what new customers pay, never what existing ones renew at.

A NULL price is a row from before prices were kept: it means the catalog's current price, until
it is filled in. Everything here is pure: no database, no clock.
"""

from __future__ import annotations

from datetime import datetime

from creditflow.catalog.models import Catalog
from creditflow.kit.periods import Term, month_boundary
from creditflow.subscription.models import Subscription


def sold_price(sub: Subscription, catalog: Catalog) -> int:
    """What the current plan and term were sold at (per charge of the term)."""
    if sub.price is not None:
        return sub.price
    return catalog.plan(sub.plan).price(Term(sub.term))


def price_of_term_from(sub: Subscription, catalog: Catalog, start: datetime) -> int:
    """What a term of the current plan and term starting at `start` charges: the moved price
    once its date has come, else the price as sold."""
    if sub.next_price is not None and sub.next_price_from is not None and start >= sub.next_price_from:
        return sub.next_price
    return sold_price(sub, catalog)


def next_renewal_price(sub: Subscription, catalog: Catalog) -> int:
    """What the next renewal charges before tax and discounts: a scheduled change's price when
    one is scheduled (the renewal applies it first), else the current plan's."""
    if sub.scheduled_plan is not None:
        if sub.scheduled_price is not None:
            return sub.scheduled_price
        return catalog.plan(sub.scheduled_plan).price(Term(sub.scheduled_term))
    return price_of_term_from(sub, catalog, sub.current_term_end)


def sell(sub: Subscription, price: int) -> None:
    """The subscription was just sold its plan and term at `price` (it started, or changed):
    a price moved for the old plan or term no longer applies."""
    sub.price = price
    sub.next_price = sub.next_price_from = None


def apply_scheduled_price(sub: Subscription) -> None:
    """A scheduled change takes effect: the price it was sold at becomes the price."""
    sub.price = sub.scheduled_price
    sub.scheduled_price = None
    sub.next_price = sub.next_price_from = None


def charge_term_from(sub: Subscription, catalog: Catalog, start: datetime) -> int:
    """The price of the term starting at `start`, kept as the subscription's price from now on
    (a moved price whose date has come is now simply its price)."""
    amount = price_of_term_from(sub, catalog, start)
    if sub.next_price_from is not None and start >= sub.next_price_from:
        sub.next_price = sub.next_price_from = None
    sub.price = amount
    return amount


def first_renewal_from(sub: Subscription, earliest: datetime) -> datetime:
    """The first renewal of the current plan and term starting at or after `earliest`: the date
    from which a price moved with that much notice applies. A renewal already invoiced (its
    payment in flight or being retried) is skipped: its price is fixed."""
    months = Term(sub.term).months
    offset = sub.term_end_offset + (months if sub.pending_invoice_id is not None else 0)
    while month_boundary(sub.anchor, offset) < earliest:
        offset += months
    return month_boundary(sub.anchor, offset)
