"""Customers and test clocks."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.customer.models import Customer, TestClock
from creditflow.events.outbox import record_event
from creditflow.kit.clock import utc
from creditflow.kit.countries import country_code
from creditflow.kit.db.rows import get_or_not_found, locking
from creditflow.kit.errors import Conflict, InvalidRequest
from creditflow.kit.ids import new_id

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# FOR NO KEY UPDATE on PostgreSQL (plain FOR UPDATE elsewhere). Whoever locks a customer row
# changes only its non-key columns (balance, payment method, billing details), never its id or
# external_id, so the lock need not exclude the key-share locks that a spend's ledger inserts take
# on the customer row through their foreign keys; FOR UPDATE made those spends wait for a purchase.
CUSTOMER_LOCK = {"key_share": True}


def email_address(value: object, param: str = "email") -> str:
    """`value` if it looks like an email address (something@domain.tld); InvalidRequest otherwise."""
    if not isinstance(value, str) or len(value) > 320 or not _EMAIL.match(value):
        raise InvalidRequest(f"{param} must be an email address like name@example.com", param=param)
    return value


def create_test_clock(session: Session, frozen_time: datetime, *, now: datetime) -> TestClock:
    clock = TestClock(id=new_id("clock"), frozen_time=utc(frozen_time), created_at=now)
    session.add(clock)
    return clock


def get_test_clock(session: Session, clock_id: str, *, for_update: bool = False) -> TestClock:
    return get_or_not_found(session, TestClock, clock_id, noun="test clock", param="test_clock",
                            **locking(for_update))


def create_customer(
    ctx: Context,
    session: Session,
    *,
    external_id: str,
    email: str,
    name: str | None = None,
    country: str | None = None,
    timezone: str | None = None,
    test_clock: str | None = None,
    language: str | None = None,
) -> Customer:
    if not external_id or not external_id.strip():
        raise InvalidRequest("external_id is required", param="external_id")
    email = email_address(email)
    if country is not None:
        country = country_code(country)  # assigned codes only, as a billing details update checks
    tz = timezone or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"unknown time zone {tz!r}", param="timezone") from None
    if language is not None:
        language = language_tag(language)
    if test_clock is not None:
        now = get_test_clock(session, test_clock).frozen_time
    else:
        now = ctx.clock.now()
    if session.scalar(select(Customer.id).where(Customer.external_id == external_id)):
        raise Conflict(f"a customer with external_id {external_id!r} exists", code="customer_exists",
                       param="external_id")
    customer = Customer(
        id=new_id("cus"), external_id=external_id, email=email, name=name,
        country=country, timezone=tz, test_clock_id=test_clock, language=language,
        balance=0, currency=ctx.catalog.currency, created_at=now,
    )
    session.add(customer)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create with the same external_id won
        raise Conflict(f"a customer with external_id {external_id!r} exists", code="customer_exists",
                       param="external_id") from None
    record_event(session, "customer.created", customer_id=customer.id, now=now,
                 data={"customer": customer.id, "external_id": external_id, "email": email})
    return customer


_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def language_tag(value: object) -> str:
    """A language tag as emails are chosen by: "de", "pt-BR" (language in lower case, a region
    in upper case); anything else is refused naming `language`."""
    if not isinstance(value, str) or len(value) > 35 or not _LANGUAGE_TAG.match(value):
        raise InvalidRequest("language must be a language tag such as 'en', 'de' or 'pt-BR'", param="language")
    first, *rest = value.split("-")
    return "-".join([first.lower(), *(part.upper() if len(part) == 2 else part for part in rest)])


def customer_now(ctx: Context, session: Session, customer_id: str | None) -> datetime:
    """"Now" for a customer: their test clock's frozen time if they have one, else the clock's."""
    if customer_id is not None:
        clock_id = session.scalar(select(Customer.test_clock_id).where(Customer.id == customer_id))
        if clock_id is not None:
            return session.get(TestClock, clock_id).frozen_time
    return ctx.clock.now()


def get_customer(session: Session, customer_id: str, *, for_update: bool = False) -> Customer:
    return get_or_not_found(session, Customer, customer_id, noun="customer", param="customer",
                            **locking(for_update, CUSTOMER_LOCK))


def list_customers(session: Session, *, external_id: str | None = None, limit: int = 20,
                   starting_after: str | None = None) -> tuple[list[Customer], bool]:
    """Oldest first (ids sort by creation); `starting_after` continues after a customer id."""
    query = select(Customer)
    if external_id is not None:
        query = query.where(Customer.external_id == external_id)
    if starting_after is not None:
        query = query.where(Customer.id > starting_after)
    rows = list(session.scalars(query.order_by(Customer.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
