"""Use cases of priced generations: estimate a job, spend or hold by options, read entitlements.

A spend or a hold of a feature no plan limits or opens a window for goes straight to the credit
spend (on PostgreSQL its single statement): this module only adds a dictionary lookup to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, literal_column, select
from sqlalchemy.orm import Session

from creditflow.catalog.models import Feature
from creditflow.catalog.pricing import Cost, Estimate, estimate
from creditflow.context import Context
from creditflow.credits import repository as credit_repo
from creditflow.credits.access import Standing, free_day, lot_kinds_for, reset_timezone
from creditflow.credits.holds import DEFAULT_TTL_SECONDS, Hold, hold_credits
from creditflow.credits.limits import fast_used, governed, limits_for, running_jobs
from creditflow.credits.spend import SpendResult, queue_spend, spend_credits
from creditflow.customer.service import customer_now, get_customer
from creditflow.generation.windows import open_window
from creditflow.kit.clock import format_instant
from creditflow.kit.errors import CreditflowError, Forbidden, InvalidRequest, NotFound
from creditflow.kit.periods import Period
from creditflow.subscription.models import Subscription
from creditflow.team.models import TeamMember
from creditflow.team.usage import check_member_given
from creditflow.subscription.repository import live_subscription


@dataclass(frozen=True)
class CustomerNow:
    """What pricing needs to know about a customer at an instant: their active paid plan and its
    current billing (credit) period."""

    customer_id: str
    now: datetime
    plan: str | None
    period: tuple[datetime, datetime] | None
    timezone: str | None


def customer_standing(ctx: Context, session: Session, customer_id: str) -> CustomerNow:
    customer = get_customer(session, customer_id)
    now = customer_now(ctx, session, customer_id)
    sub = live_subscription(session, customer_id)
    if sub is None or sub.status != "active":
        return CustomerNow(customer_id, now, None, None, customer.timezone)
    return CustomerNow(customer_id, now, sub.plan, (sub.credit_period_start, sub.credit_period_end),
                       customer.timezone)


# What pricing reads on every estimate, in one statement compiled once: the customer (404 if
# none), their test clock's time, and their active subscription's plan and credit period.
_subscriptions = Subscription.__table__
_standing = credit_repo.CompiledStatement(
    select(credit_repo.customers.c.timezone, credit_repo.clocks.c.frozen_time, _subscriptions.c.plan,
           _subscriptions.c.credit_period_start, _subscriptions.c.credit_period_end)
    .select_from(credit_repo.customers
                 .outerjoin(credit_repo.clocks, credit_repo.clocks.c.id == credit_repo.customers.c.test_clock_id)
                 .outerjoin(_subscriptions, and_(_subscriptions.c.customer_id == credit_repo.customers.c.id,
                                                 _subscriptions.c.status == literal_column("'active'"))))
    .where(credit_repo.customers.c.id == bindparam("customer_id")))


def standing_now(ctx: Context, customer_id: str, *, member=..., connection=None) -> CustomerNow:
    """`customer_standing` in one round trip on a pooled connection (or on `connection`, a DBAPI
    connection in autocommit mode that the caller keeps), without an ORM session (an estimate is
    read far more often than anything is written). With `member` (an estimate's), a team's
    estimate must name its member and anyone else's must not, as for spends."""
    pooled = connection is None
    if pooled:
        connection = ctx.db.engine.raw_connection()
    try:
        cursor = credit_repo.UnitCursor(ctx.db.engine.dialect, connection.cursor())
        row = _standing.first(cursor, {"customer_id": customer_id})
        if row is not None and member is not ...:
            _check_member(cursor, customer_id, member)
    finally:
        if pooled:
            connection.rollback()
            connection.close()
    if row is None:
        raise NotFound(f"no such customer: {customer_id}", param="customer")
    now = row.frozen_time or ctx.clock.now()
    if row.plan is None:
        return CustomerNow(customer_id, now, None, None, row.timezone)
    return CustomerNow(customer_id, now, row.plan, (row.credit_period_start, row.credit_period_end), row.timezone)


_members = TeamMember.__table__
_member_status = credit_repo.CompiledStatement(
    select(_members.c.status).where(_members.c.id == bindparam("member"),
                                    _members.c.customer_id == bindparam("customer_id")))


def _check_member(cursor, customer_id: str, member: str | None) -> None:
    """As a team's spend checks its member, without counting anything: named on a team and only
    there, of this team, and active."""
    check_member_given(cursor, customer_id, member)
    if member is None:
        return
    row = _member_status.first(cursor, {"member": member, "customer_id": customer_id})
    if row is None:
        raise NotFound(f"no member {member} in this team", param="member")
    if row.status != "active":
        raise Forbidden(f"the member is {row.status}: only active members spend", code="member_inactive",
                        param="member")


def window_for(ctx: Context, standing: CustomerNow, feature: str) -> Period | None:
    """The unlimited window the customer is in for `feature` now, if any."""
    if standing.plan is None or standing.period is None or standing.plan not in ctx.catalog.plans:
        return None
    days = ctx.catalog.plans[standing.plan].unlimited.get(feature)
    return open_window(*standing.period, days, standing.now)


def priced(feature: Feature) -> Cost:
    if feature.cost is None:
        raise InvalidRequest(f"{feature.code} has no price in the catalog: spend an amount instead of options",
                             code="feature_not_priced", param="feature")
    return feature.cost


def window_label(window: Period) -> str:
    return f"Unlimited until {format_instant(window.end)}"


def estimate_job(ctx: Context, customer_id: str, *, feature: str, options: dict | None,
                 member: str | None = None, connection=None) -> Estimate:
    """What one job of `feature` with `options` costs this customer now: the catalog's price,
    or 0 inside an unlimited window (its lines still say what it would cost, and a last line
    takes it off). `connection`: see `standing_now`."""
    feature_def = ctx.catalog.feature(feature)
    result = estimate(feature, priced(feature_def), options)
    window = window_for(ctx, standing_now(ctx, customer_id, member=member, connection=connection), feature)
    return result.in_window(window_label(window)) if window else result


def _amount(ctx: Context, feature: str, amount, options) -> object:
    if amount is not None and options is not None:
        raise InvalidRequest("send either amount or options, not both: options are priced by the catalog",
                             param="options")
    if amount is None and options is None:
        raise InvalidRequest("amount is required (or options, for a feature the catalog prices)", param="amount")
    if options is None:
        return amount
    return estimate(feature, priced(ctx.catalog.feature(feature)), options).amount


def _free_until(ctx: Context, customer_id: str, feature: str) -> datetime | None:
    """The end of the customer's unlimited window for `feature`, when some plan opens one."""
    if not any(feature in plan.unlimited for plan in ctx.catalog.plans.values()):
        return None
    window = window_for(ctx, standing_now(ctx, customer_id), feature)
    return window.end if window else None


def spend_job(ctx: Context, customer_id: str, *, feature: str, reference: str, amount=None,
              options: dict | None = None, member: str | None = None) -> SpendResult:
    """A spend of `amount`, or of what `options` cost (exactly the estimate); free inside an
    unlimited window, subject to the plan's limits. Errors as `spend_credits`, plus
    InvalidRequest for options and LimitReached (`concurrency_limit`, `daily_limit`)."""
    feature_code = feature if isinstance(feature, str) else None
    if options is None and (feature_code is None or feature_code not in governed(ctx.catalog)):
        # the usual spend, untouched
        return spend_credits(ctx, customer_id, amount=amount if amount is not None else _amount(
            ctx, feature, amount, options), feature=feature, reference=reference, member=member)
    ctx.catalog.feature(feature)
    amount = _amount(ctx, feature, amount, options)
    return spend_credits(ctx, customer_id, amount=amount, feature=feature, reference=reference, member=member,
                         free_until=_free_until(ctx, customer_id, feature))


def queue_spend_job(ctx: Context, customer_id: str, *, feature: str, reference: str, amount=None,
                    options: dict | None = None, member: str | None = None,
                    on_done: Callable[[SpendResult | None], None]) -> bool:
    """`spend_job` for a caller that must not wait (an event loop), when the spend is a usual
    one: an amount, no member, a feature no plan limits. See `credits.spend.queue_spend`: True
    when queued, and `on_done` then gets the result, or None for `spend_job` to answer."""
    if options is not None or member is not None or amount is None or not isinstance(feature, str):
        return False
    return queue_spend(ctx, customer_id, amount=amount, feature=feature, reference=reference, on_done=on_done)


def hold_job(ctx: Context, customer_id: str, *, feature: str, reference: str, amount=None,
             options: dict | None = None, ttl_seconds: int = DEFAULT_TTL_SECONDS,
             member: str | None = None) -> Hold:
    """A hold of `amount`, or of what `options` cost; a running job for the plan's limits."""
    feature_code = feature if isinstance(feature, str) else None
    if options is None and (feature_code is None or feature_code not in governed(ctx.catalog)):
        return hold_credits(ctx, customer_id, amount=amount if amount is not None else _amount(
            ctx, feature, amount, options), feature=feature, reference=reference, ttl_seconds=ttl_seconds,
            member=member)
    ctx.catalog.feature(feature)
    amount = _amount(ctx, feature, amount, options)
    return hold_credits(ctx, customer_id, amount=amount, feature=feature, reference=reference,
                        ttl_seconds=ttl_seconds, member=member, free_until=_free_until(ctx, customer_id, feature))


# -- entitlements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entitlement:
    feature: str
    allowed: bool
    reason: str | None  # why not, when not allowed (`subscription_required`, `feature_not_in_plan`)
    unlimited_until: datetime | None
    concurrent_limit: int | None
    running: int
    fast_per_day: int | None
    fast_used_today: int
    resets_at: datetime | None  # the next local midnight, when the plan counts fast jobs per day
    relaxed: bool


def entitlements(ctx: Context, session: Session, customer_id: str) -> list[Entitlement]:
    """What each feature of the catalog allows the customer now (for the app's interface)."""
    standing = customer_standing(ctx, session, customer_id)
    cursor = credit_repo.UnitCursor.of(session)
    plan = standing.plan if standing.plan in ctx.catalog.plans else None
    zone = reset_timezone(ctx.catalog, standing.timezone)
    day = free_day(standing.now, zone)
    result = []
    for code, feature in ctx.catalog.features.items():
        try:
            lot_kinds_for(ctx.catalog, Standing(plan), feature)
            allowed, reason = True, None
        except CreditflowError as error:
            allowed, reason = False, error.code
        window = window_for(ctx, standing, code) if allowed else None
        limits = limits_for(ctx.catalog, plan, code) if allowed else None
        watched = code in governed(ctx.catalog)
        running = len(running_jobs(cursor, customer_id, code, standing.now)) if watched else 0
        used = fast_used(cursor, customer_id, code, day.key) if watched else 0
        fast_limit = limits.fast_per_day if limits else None
        result.append(Entitlement(
            code, allowed, reason, window.end if window else None, limits.concurrent if limits else None,
            running, fast_limit, used, day.ends_at if fast_limit is not None else None,
            bool(limits and limits.relaxed)))
    return result


def unlimited_windows(ctx: Context, session: Session, customer_id: str) -> list[tuple[Feature, Period]]:
    """The customer's open unlimited windows (for the billing page)."""
    standing = customer_standing(ctx, session, customer_id)
    found = []
    for code, feature in ctx.catalog.features.items():
        window = window_for(ctx, standing, code)
        if window is not None:
            found.append((feature, window))
    return found
