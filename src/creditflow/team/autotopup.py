"""Auto top-up settings, and the claim a worker takes before buying.

The purchase itself goes through the purchase layer (`purchase.auto_top_up`), outside any
transaction; here are only the settings and the state that makes it happen once per crossing
of the threshold, never twice at once, and at most `monthly_max` times a monthly period.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from creditflow.customer.models import Customer
from creditflow.customer.service import get_customer
from creditflow.events.outbox import record_event
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Forbidden, InvalidRequest
from creditflow.team.models import AutoTopUp

FEATURE = "auto_top_up"
MAX_PER_MONTH = 100
# A purchase in flight longer than this is taken up again (same reference: never bought twice).
CLAIM_LEASE = timedelta(minutes=5)


def set_auto_top_up(ctx, session: Session, customer_id: str, *, enabled: bool, threshold, bundle: str,
                    monthly_max: int, plan: str | None, now: datetime) -> AutoTopUp:
    """Save the settings. Turning it on needs a plan with the `auto_top_up` feature (Forbidden
    `feature_not_in_plan`) and arms it; turning it off always works."""
    get_customer(session, customer_id, for_update=True)
    if not isinstance(enabled, bool):
        raise InvalidRequest("enabled must be true or false", param="enabled")
    threshold = Credits.parse(threshold, "threshold")
    bundle_def = ctx.catalog.bundle(bundle)
    if isinstance(monthly_max, bool) or not isinstance(monthly_max, int) or not 1 <= monthly_max <= MAX_PER_MONTH:
        raise InvalidRequest(f"monthly_max must be a whole number from 1 to {MAX_PER_MONTH}", param="monthly_max")
    plan_def = ctx.catalog.plans.get(plan) if plan else None
    if enabled and (plan_def is None or FEATURE not in plan_def.features):
        raise Forbidden(f"auto top-up is not in the {plan or 'free'} plan", code="feature_not_in_plan",
                        param="enabled")
    settings = session.get(AutoTopUp, customer_id, with_for_update=True, populate_existing=True)
    if settings is None:
        settings = AutoTopUp(customer_id=customer_id, purchases=0, sequence=0, armed=True)
        session.add(settings)
    if enabled and not settings.enabled:
        settings.armed, settings.last_failure = True, None
    settings.enabled, settings.threshold, settings.bundle = enabled, threshold, bundle_def.code
    settings.monthly_max, settings.updated_at = monthly_max, now
    session.flush()
    return settings


def get_auto_top_up(session: Session, customer_id: str) -> AutoTopUp | None:
    return session.get(AutoTopUp, customer_id)


def candidates(session: Session, test_clock_id: str | None, now: datetime) -> list[str]:
    """Customers (on that test clock, or on real time) whose auto top-up is on and not in
    flight, or in flight past its lease."""
    clock = Customer.test_clock_id.is_(None) if test_clock_id is None else Customer.test_clock_id == test_clock_id
    return list(session.scalars(
        select(AutoTopUp.customer_id).join(Customer, Customer.id == AutoTopUp.customer_id)
        .where(AutoTopUp.enabled.is_(True), clock,
               or_(AutoTopUp.in_flight_since.is_(None), AutoTopUp.in_flight_since <= now - CLAIM_LEASE))
        .order_by(AutoTopUp.customer_id)))


def rearm(session: Session, customer_id: str, now: datetime) -> bool:
    """The pool is back at or above the threshold: the next crossing buys again."""
    done = session.execute(update(AutoTopUp).where(
        AutoTopUp.customer_id == customer_id, AutoTopUp.armed.is_(False), AutoTopUp.in_flight_since.is_(None))
        .values(armed=True, updated_at=now))
    return done.rowcount == 1


def claim(session: Session, settings: AutoTopUp, *, period: datetime, now: datetime) -> str | None:
    """Take the purchase for this worker with one conditional UPDATE (so two workers never both
    buy): the reference it buys with, or None when another took it, the monthly maximum is
    reached or it is not armed. A claim left past its lease is taken again with its reference."""
    if settings.in_flight_since is not None:
        if settings.in_flight_since > now - CLAIM_LEASE:
            return None  # another worker is buying it now
        # A claim left past its lease (its worker died): its purchase is taken up again, by reference.
        stale = settings.in_flight_since
        done = session.execute(update(AutoTopUp).where(
            AutoTopUp.customer_id == settings.customer_id, AutoTopUp.in_flight_since == stale)
            .values(in_flight_since=now, updated_at=now))
        return settings.in_flight_reference if done.rowcount == 1 else None
    purchases = settings.purchases if settings.period_start == period else 0
    if not settings.armed or purchases >= settings.monthly_max:
        return None
    reference = f"auto_top_up:{settings.customer_id}:{settings.sequence + 1}"
    done = session.execute(update(AutoTopUp).where(
        AutoTopUp.customer_id == settings.customer_id, AutoTopUp.enabled.is_(True), AutoTopUp.armed.is_(True),
        AutoTopUp.in_flight_since.is_(None), AutoTopUp.sequence == settings.sequence)
        .values(armed=False, in_flight_since=now, in_flight_reference=reference, sequence=settings.sequence + 1,
                updated_at=now))
    return reference if done.rowcount == 1 else None


def succeeded(session: Session, customer_id: str, *, reference: str, period: datetime, bundle: str,
              credits: Credits, invoice_id: str, available: Credits, now: datetime) -> None:
    """Count the purchase (once: a worker that took up a stale claim and the slow one that held it
    buy with the same reference, and the first to get here records it); armed again at once if it
    lifted the pool to the threshold (the next spend below it is a new crossing)."""
    settings = session.get(AutoTopUp, customer_id, with_for_update=True, populate_existing=True)
    if settings.in_flight_reference != reference:
        return
    settings.armed = available >= settings.threshold
    if settings.period_start != period:
        settings.period_start, settings.purchases = period, 0
    settings.purchases += 1
    settings.in_flight_since = settings.in_flight_reference = None
    settings.updated_at = now
    record_event(session, "auto_top_up.succeeded", customer_id=customer_id, now=now, data={
        "bundle": bundle, "credits": str(credits), "invoice": invoice_id, "purchases_this_month": settings.purchases,
        "monthly_max": settings.monthly_max})


def failed(session: Session, customer_id: str, *, reference: str, code: str, message: str,
           invoice_id: str | None, now: datetime) -> None:
    """A declined or authentication-needing charge turns auto top-up off, with an event (once)."""
    settings = session.get(AutoTopUp, customer_id, with_for_update=True, populate_existing=True)
    if settings.in_flight_reference != reference:
        return
    settings.enabled = False
    settings.in_flight_since = settings.in_flight_reference = None
    settings.last_failure = f"{code}: {message}"[:500]
    settings.updated_at = now
    record_event(session, "auto_top_up.failed", customer_id=customer_id, now=now, data={
        "bundle": settings.bundle, "code": code, "message": message, "invoice": invoice_id, "enabled": False})


def purchases_this_period(settings: AutoTopUp, period: datetime | None) -> int:
    return settings.purchases if period is not None and settings.period_start == period else 0
