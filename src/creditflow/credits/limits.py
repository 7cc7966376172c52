"""A plan's limits on a feature's jobs, and its unlimited windows, applied inside a spend or a hold.

Everything here runs in the spend's (or hold's, or settle's) transaction, after the customer's
credit account is locked. Every spend, hold and settle of one customer takes that lock, so the
counts read here cannot change under us: 16 requests racing for a concurrency limit of 1 leave
exactly one job running, on SQLite (one writer at a time) and PostgreSQL (the row lock) alike.

- A running job is an open hold (status `held`, not yet expired). A spend or a hold past the
  plan's `concurrent` jobs is refused (`concurrency_limit`, resetting when the earliest running
  hold expires).
- A fast job is a spend, or a settled hold, on the fast queue. `fast_per_day` of them per
  customer-local day (midnight in the same time zone as the free daily credits); past it a spend
  or a hold is refused (`daily_limit`, resetting at the next local midnight), or runs on the
  relaxed queue where the plan allows it (`relaxed: true`; relaxed jobs are not counted).
- Inside an unlimited window (decided by the caller, who knows the billing period, and passed as
  `free_until`) a job costs 0: it is recorded with amount 0, like any other.

Features no plan limits or windows keep the usual spend path (on PostgreSQL a single statement).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from creditflow.catalog.models import Catalog, Feature
from creditflow.catalog.pricing import FeatureLimits
from creditflow.credits import repository as repo
from creditflow.credits.access import Standing, free_day, lot_kinds_for, reset_timezone
from creditflow.credits.generation_models import CreditUsage
from creditflow.kit.clock import format_instant
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError

FAST, RELAXED = "fast", "relaxed"


class LimitReached(CreditflowError, category="limited", code="concurrency_limit"):
    """A plan's limit refuses the job for now; `resets_at` (beside the error) says until when."""

    def __init__(self, message: str, *, code: str, resets_at: datetime):
        super().__init__(message, code=code, param="feature", extra={"resets_at": format_instant(resets_at)})
        self.resets_at = resets_at


_governed: dict[int, tuple[Catalog, frozenset[str]]] = {}
# A process has one catalog; the few more of tests or a reload must not pile up (each is kept alive).
_GOVERNED_KEPT = 8


def governed(catalog: Catalog) -> frozenset[str]:
    """The features some plan limits or opens an unlimited window for (cached per catalog)."""
    cached = _governed.get(id(catalog))
    if cached is None or cached[0] is not catalog:
        codes = frozenset(code for plan in catalog.plans.values() for code in (*plan.unlimited, *plan.limits))
        if len(_governed) >= _GOVERNED_KEPT:
            _governed.pop(next(iter(_governed)))
        cached = _governed[id(catalog)] = (catalog, codes)
    return cached[1]


def limits_for(catalog: Catalog, plan: str | None, feature: str) -> FeatureLimits | None:
    if plan is None or plan not in catalog.plans:
        return None
    return catalog.plans[plan].limits.get(feature)


# -- statements ----------------------------------------------------------------------------------

usage = CreditUsage.__table__
_running = repo.CompiledStatement(
    select(repo.spends.c.expires_at).where(
        repo.spends.c.customer_id == bindparam("customer_id"), repo.spends.c.status == repo.HELD,
        repo.spends.c.feature == bindparam("feature"),
        repo.spends.c.expires_at > bindparam("now", type_=repo.spends.c.expires_at.type))
    .order_by(repo.spends.c.expires_at))
_fast_used = repo.CompiledStatement(
    select(func.coalesce(func.sum(usage.c.fast_used), 0).label("used")).where(
        usage.c.customer_id == bindparam("customer_id"), usage.c.feature == bindparam("feature"),
        usage.c.day == bindparam("day")))


def _count_statement(insert):
    statement = insert(usage).values(customer_id=bindparam("customer_id"), feature=bindparam("feature"),
                                     day=bindparam("day"), fast_used=literal_column("1"))
    return repo.CompiledStatement(statement.on_conflict_do_update(
        index_elements=[usage.c.customer_id, usage.c.feature, usage.c.day],
        set_={"fast_used": usage.c.fast_used + 1}))


_count_fast = {"postgresql": _count_statement(pg_insert), "sqlite": _count_statement(sqlite_insert)}


def running_jobs(cursor: repo.UnitCursor, customer_id: str, feature: str, now: datetime) -> list[datetime]:
    """When each running job (open hold) of the feature expires, soonest first."""
    return [row.expires_at for row in _running.rows(cursor, {"customer_id": customer_id, "feature": feature,
                                                             "now": now})]


def fast_used(cursor: repo.UnitCursor, customer_id: str, feature: str, day: str) -> int:
    return int(_fast_used.first(cursor, {"customer_id": customer_id, "feature": feature, "day": day}).used)


def _count(cursor: repo.UnitCursor, customer_id: str, feature: str, day: str) -> None:
    _count_fast[cursor.dialect.name].execute(cursor, {"customer_id": customer_id, "feature": feature, "day": day})


# -- inside a spend or a hold ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Admission:
    amount: Credits  # what the job is charged: 0 inside an unlimited window
    queue: str | None  # fast | relaxed, for a feature a plan limits; None otherwise


def admit(ctx, book, plan: str | None, feature: Feature, amount: Credits, *, kind: str, reference: str,
          free_until: datetime | None = None) -> Admission:
    """Check the plan's limits for one more job of `feature` (a `spend` or a `hold`) and price it:
    0 inside an unlimited window (recorded by a ledger line of 0). Raises LimitReached; the
    access rules (subscription_required, feature_not_in_plan) are checked first, as a spend
    does. Counts the job when it is a fast spend."""
    catalog = ctx.catalog
    if feature.code not in governed(catalog) and free_until is None:
        return Admission(amount, None)
    lot_kinds_for(catalog, Standing(plan), feature)
    limits = limits_for(catalog, plan, feature.code)
    queue = None
    if limits is not None:
        queue = FAST
        if limits.concurrent is not None:
            running = running_jobs(book.cursor, book.customer_id, feature.code, book.now)
            if len(running) >= limits.concurrent:
                raise LimitReached(
                    f"{feature.label} already has {len(running)} job(s) running, the most this plan allows "
                    f"at once; one ends at {format_instant(running[0])} at the latest",
                    code="concurrency_limit", resets_at=running[0])
        if limits.fast_per_day is not None:
            day = free_day(book.now, reset_timezone(catalog, book.account.timezone))
            used = fast_used(book.cursor, book.customer_id, feature.code, day.key)
            if used >= limits.fast_per_day:
                if not limits.relaxed:
                    raise LimitReached(
                        f"{feature.label}: the {limits.fast_per_day} fast jobs a day this plan allows are used; "
                        f"more from {format_instant(day.ends_at)}", code="daily_limit", resets_at=day.ends_at)
                queue = RELAXED
    if kind == "spend" and queue != RELAXED:
        _count_today(ctx, book, feature.code)
    if free_until is not None and book.now < free_until:
        book.take_nothing(kind, reference)
        return Admission(Credits(0), queue)
    return Admission(amount, queue)


def settled(ctx, book, feature: str, queue: str | None = None) -> None:
    """A settled hold is a fast job of the day it settles on, unless it was placed on the relaxed
    queue."""
    if feature in governed(ctx.catalog) and queue != RELAXED:
        _count_today(ctx, book, feature)


def _count_today(ctx, book, feature: str) -> None:
    day = free_day(book.now, reset_timezone(ctx.catalog, book.account.timezone))
    _count(book.cursor, book.customer_id, feature, day.key)
