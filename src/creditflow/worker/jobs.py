"""Due work other domains add to the worker (credit expiries, holds, webhook deliveries).

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


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[..., int]
    next_due: Callable[[Session, str | None, datetime], datetime | None] | None = None


_jobs: dict[str, Job] = {}


def register_job(name: str, run: Callable[..., int],
                 next_due: Callable[[Session, str | None, datetime], datetime | None] | None = None) -> None:
    _jobs[name] = Job(name, run, next_due)


def registered_jobs() -> list[Job]:
    _load_all()
    return list(_jobs.values())


def _load_all() -> None:
    for module in ("creditflow.credits.jobs", "creditflow.events.delivery", "creditflow.refund.jobs"):
        try:
            __import__(module)
        except ImportError:
            pass
