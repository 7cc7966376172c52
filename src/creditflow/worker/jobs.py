"""The worker's jobs besides renewals, in one explicit list.

A job is `run(ctx, now, test_clock_id)`: it does the work due at `now` for customers on that
test clock (or, with `test_clock_id=None`, for customers on real time) and returns how many
things it did. `next_due(session, test_clock_id, after)` says when it next has work strictly
after `after`, so that advancing a test clock can stop at that instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from creditflow.credits import jobs as credit_jobs
from creditflow.events import delivery
from creditflow.kit.db import partitions
from creditflow.notify import service as emails
from creditflow.purchase import auto_top_up
from creditflow.purchase.refund import retry_pending_refunds


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[..., int]
    next_due: Callable[[Session, str | None, datetime], datetime | None] | None = None


JOBS: tuple[Job, ...] = (
    # PostgreSQL: this month's and the next two months' partitions of the history tables exist.
    Job("partitions", partitions.run),
    Job("credits.expiry", credit_jobs.expire_due, credit_jobs.next_due),
    Job("webhook_delivery", delivery.run),
    Job("webhook_purge", delivery.run_purge),
    Job("refund_retry", retry_pending_refunds),
    Job("emails", emails.run, emails.next_reminder_due),
    Job("auto_top_up", auto_top_up.run),
)
