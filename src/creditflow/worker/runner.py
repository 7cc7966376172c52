"""The worker: claims due work and runs it, exactly once even with several workers.

Due subscriptions are claimed with `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite serialises
writers anyway) and leased to the claiming worker by pushing `due_at` forward, so that the
gateway can be called outside a transaction without another worker taking the same step.
Every step re-reads the row under a lock and re-checks that it is still due, and the
database's unique keys on invoices and grants make a duplicate step fail rather than
double charge or double grant.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.kit import metrics
from creditflow.kit.db.heartbeats import beat
from creditflow.kit.ids import new_id
from creditflow.purchase.checkout import reconcile_due
from creditflow.purchase.renewal import renew_batch
from creditflow.subscription.calendar import LEASE
from creditflow.subscription.models import Subscription
from creditflow.worker.jobs import JOBS
from creditflow.worker.observe import run_job

log = logging.getLogger("creditflow.worker")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id('w')[-6:]}"


def claim_due_subscriptions(session: Session, now: datetime, owner: str, batch: int) -> list[str]:
    rows = session.execute(
        select(Subscription.id, Subscription.due_at)
        .where(Subscription.due_at <= now, Subscription.test_clock_id.is_(None))
        .order_by(Subscription.due_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    ids = [row.id for row in rows]
    metrics.observe_lag("renewals", now, [row.due_at for row in rows])
    if ids:
        session.execute(
            update(Subscription).where(Subscription.id.in_(ids)).values(due_at=now + LEASE, lease_owner=owner)
        )
    return ids


def tick(ctx: Context, now: datetime | None = None, *, owner: str | None = None, batch: int = 100) -> int:
    """Run the work due at `now` for customers on real time; returns how much ran.

    Runs until nothing due is left, claiming `batch` subscriptions at a time and renewing a
    claimed batch together (see purchase/renewal.py)."""
    now = now or ctx.clock.now()
    owner = owner or worker_id()
    done = run_job("payment_reconcile", reconcile_due, ctx, now)
    done += run_job("renewals", renew_due, ctx, now, owner, batch)
    for job in JOBS:
        done += run_job(job.name, job.run, ctx, now, None)
    ctx.db.run(lambda session: beat(session, owner, now))  # for GET /readyz: a worker is alive
    return done


def renew_due(ctx: Context, now: datetime, owner: str, batch: int) -> int:
    """Claim due subscriptions, `batch` at a time, and run their due steps until none is left."""
    done = 0
    while True:
        ids = ctx.db.run(lambda session: claim_due_subscriptions(session, now, owner, batch))
        if not ids:
            return done
        done += renew_batch(ctx, ids, now, owner)


def run_forever(ctx: Context, *, interval: float = 1.0, stop: threading.Event | None = None, batch: int = 100) -> None:
    stop = stop or threading.Event()
    owner = worker_id()
    metrics.watch_pool(ctx.db.engine)
    log.info("worker %s started", owner)
    while not stop.is_set():
        try:
            did = tick(ctx, owner=owner, batch=batch)
        except Exception:  # keep the loop alive; the failed unit of work rolled back
            log.exception("worker tick failed")
            did = 0
        if not did:
            stop.wait(interval)
