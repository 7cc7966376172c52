"""Watching the worker: each job run is timed, counted and logged in one line (job, items,
duration_ms, outcome).

A run that did nothing is logged at DEBUG (the worker looks for work every second); one that did
something at INFO; one that failed at ERROR, and the failure propagates (the worker's loop logs
its traceback once, as before).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from creditflow.kit import metrics
from creditflow.kit.logs import get_logger

log = get_logger("creditflow.worker")


def run_job(job: str, work: Callable[..., int], *args) -> int:
    """`work(*args)`, which returns how many things it did, observed as the job `job`."""
    started = time.perf_counter()
    try:
        done = work(*args)
    except Exception:
        _record(job, 0, time.perf_counter() - started, "error")
        raise
    _record(job, done, time.perf_counter() - started, "ok")
    return done


def _record(job: str, done: int, seconds: float, outcome: str) -> None:
    metrics.JOB_RUNS.labels(job, outcome).inc()
    metrics.JOB_DURATION.labels(job).observe(seconds)
    if done:
        metrics.JOB_ITEMS.labels(job).inc(done)
    fields = {"job": job, "items": done, "duration_ms": round(seconds * 1000, 2), "outcome": outcome}
    if outcome == "error":
        log.error("job", **fields)
    elif done:
        log.info("job", **fields)
    else:
        log.debug("job", **fields)
