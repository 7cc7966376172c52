"""Advancing a test clock: every piece of due work for its customers, in time order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from creditflow.context import Context
from creditflow.customer.service import get_test_clock
from creditflow.kit.clock import utc
from creditflow.kit.errors import InvalidRequest
from creditflow.purchase.checkout import reconcile_due
from creditflow.purchase.renewal import run_due
from creditflow.subscription.models import Subscription
from creditflow.worker.jobs import JOBS

MAX_STOPS = 100_000


def advance_test_clock(ctx: Context, clock_id: str, frozen_time: datetime):
    """Move the clock to `frozen_time`, stopping at each instant where work is due and running it
    with that instant as "now", exactly as the worker would have."""
    target = utc(frozen_time)
    with ctx.db.transaction(readonly=True) as session:
        current = get_test_clock(session, clock_id).frozen_time
    if target < current:
        raise InvalidRequest("a test clock can't move backwards", param="frozen_time")
    run_clock_work(ctx, clock_id, current)
    for _ in range(MAX_STOPS):
        with ctx.db.transaction(readonly=True) as session:
            stop = _next_stop(session, clock_id, current)
        if stop is None or stop > target:
            break
        current = stop
        _set_time(ctx, clock_id, current)
        run_clock_work(ctx, clock_id, current)
    _set_time(ctx, clock_id, target)
    run_clock_work(ctx, clock_id, target)
    with ctx.db.transaction(readonly=True) as session:
        return get_test_clock(session, clock_id)


def run_clock_work(ctx: Context, clock_id: str, now: datetime) -> int:
    done = reconcile_due(ctx, now, clock_id)
    with ctx.db.transaction(readonly=True) as session:
        due = list(session.scalars(
            select(Subscription.id).where(Subscription.test_clock_id == clock_id, Subscription.due_at <= now)
            .order_by(Subscription.due_at)
        ))
    for sub_id in due:
        done += run_due(ctx, sub_id, now)
    for job in JOBS:
        done += job.run(ctx, now, clock_id)
    return done


def _next_stop(session, clock_id: str, after: datetime) -> datetime | None:
    """The first instant after `after` at which something is due for the clock's customers."""
    candidates = [session.scalar(
        select(func.min(Subscription.due_at))
        .where(Subscription.test_clock_id == clock_id, Subscription.due_at > after)
    )]
    for job in JOBS:
        if job.next_due is not None:
            candidates.append(job.next_due(session, clock_id, after))
    candidates = [c for c in candidates if c is not None]
    return min(candidates) if candidates else None


def _set_time(ctx: Context, clock_id: str, at: datetime) -> None:
    with ctx.db.transaction() as session:
        clock = get_test_clock(session, clock_id, for_update=True)
        if at > clock.frozen_time:
            clock.frozen_time = at
