"""What creditflow counts, for Prometheus: one place that names every metric.

The metrics live in prometheus-client's default registry of the process. With
`PROMETHEUS_MULTIPROC_DIR` set (before the process starts), prometheus-client keeps every value
in a file of that directory instead, and `render` reads all the processes' files, so that
any one API process answers `/metrics` for all of them (uvicorn workers, `creditflow worker`
processes on the same host).

Counting costs a dictionary look-up and an addition (a write to a memory-mapped file in
multi-process mode); nothing here touches the database. Counts that belong to a transaction
(`count_on_commit`) move only once it commits, so a rolled-back round is never counted.
"""

from __future__ import annotations

import atexit
import os
import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import event
from sqlalchemy.orm import Session

from creditflow.kit.errors import CreditflowError

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

if os.environ.get(MULTIPROCESS_ENV) and not os.path.isdir(os.environ[MULTIPROCESS_ENV]):
    raise RuntimeError(f"{MULTIPROCESS_ENV}={os.environ[MULTIPROCESS_ENV]!r} is not a directory: "
                       "create it, empty, before starting creditflow")

# A spend is a few milliseconds; a renewal round with a gateway call, up to seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0)

HTTP_REQUESTS = Counter(
    "creditflow_http_requests", "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "creditflow_http_request_duration_seconds", "Time to answer an HTTP request, by method and route template",
    ["method", "route"], buckets=LATENCY_BUCKETS)
SPENDS = Counter("creditflow_spends", "Credit spends, by outcome (ok, replayed, or the error code)", ["outcome"])
RENEWALS = Counter(
    "creditflow_renewals",
    "Renewal steps of subscriptions, by outcome (renewed, payment_failed, payment_unknown, ended, error)",
    ["outcome"])
PAYMENT_ATTEMPTS = Counter(
    "creditflow_payment_attempts", "Charges sent to the payment gateway, by its answer", ["outcome"])
JOB_RUNS = Counter("creditflow_worker_job_runs", "Worker job runs, by job and outcome (ok, error)",
                   ["job", "outcome"])
JOB_ITEMS = Counter("creditflow_worker_job_items", "Pieces of work done by worker jobs", ["job"])
JOB_DURATION = Histogram("creditflow_worker_job_duration_seconds", "Time a worker job run took", ["job"],
                         buckets=LATENCY_BUCKETS)
JOB_LAG = Histogram("creditflow_worker_job_lag_seconds",
                    "How late due work started: the worker's now minus the time it was due", ["job"],
                    buckets=LAG_BUCKETS)
# Summed over the live processes in multi-process mode.
POOL_CHECKED_OUT = Gauge("creditflow_db_pool_checked_out", "Database connections in use (checked out of the pool)",
                         multiprocess_mode="livesum")
POOL_SIZE = Gauge("creditflow_db_pool_size", "Database connections the pool keeps (more may overflow)",
                  multiprocess_mode="livesum")

_RENEWAL_OUTCOMES = {"paid": "renewed", "failed": "payment_failed", "unknown": "payment_unknown"}
_PENDING = "creditflow.metrics.pending"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


_SPENT, _REPLAYED = SPENDS.labels("ok"), SPENDS.labels("replayed")  # looked up once: counted on every spend


def count_spend(outcome) -> None:
    """A spend's result (`replayed` or not) or the exception it raised."""
    if isinstance(outcome, BaseException):
        SPENDS.labels(outcome.code if isinstance(outcome, CreditflowError) else "error").inc()
    else:
        (_REPLAYED if outcome.replayed else _SPENT).inc()


def count_payment(result):
    """Count a gateway's answer to a charge (its `status`), and return it."""
    PAYMENT_ATTEMPTS.labels(result.status).inc()
    return result


def count_renewal(session: Session, outcome: str | None) -> None:
    """A renewal step's outcome (a collection's status: paid, failed, unknown; or ended),
    counted when `session` commits; None counts nothing."""
    if outcome is not None:
        count_on_commit(session, RENEWALS.labels(_RENEWAL_OUTCOMES.get(outcome, outcome)))


def count_on_commit(session: Session, counter) -> None:
    """Increment `counter` (a labelled child) once `session`'s transaction commits; never if it
    rolls back."""
    session.info.setdefault(_PENDING, []).append(counter)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for counter in session.info.pop(_PENDING, ()):
        counter.inc()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


def observe_lag(job: str, now, due: list) -> None:
    """How late each piece of due work (due at each of `due`) starts at `now`."""
    histogram = JOB_LAG.labels(job)
    for at in due:
        if at is not None:
            histogram.observe(max((now - at).total_seconds(), 0.0))


_watched: weakref.WeakSet = weakref.WeakSet()


def watch_pool(engine) -> None:
    """Keep the pool gauges of `engine` (once per engine): connections checked out, and the
    pool's size (the last engine watched in the process; a process has one)."""
    if engine in _watched:
        return
    _watched.add(engine)
    size = getattr(engine.pool, "size", None)
    POOL_SIZE.set(size() if callable(size) else 0)
    event.listen(engine, "checkout", _checked_out)
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "detach", _checked_in)  # taken out of the pool for good: no longer the pool's


def _checked_out(*_):
    POOL_CHECKED_OUT.inc()


def _checked_in(*_):
    POOL_CHECKED_OUT.dec()


def render(*scraped) -> bytes:
    """The text exposition of every metric: this process's (or, in multi-process mode, every
    process's), then the collectors in `scraped`, computed now."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        output = generate_latest(registry)
    else:
        output = generate_latest(REGISTRY)
    if scraped:
        now = CollectorRegistry(auto_describe=False)
        for collector in scraped:
            now.register(collector)
        output += generate_latest(now)
    return output


def forget_this_process() -> None:
    """Drop this process's live gauges (the pool's) from the directory: at the API's shutdown,
    and at exit (a process killed by a signal skips exit handlers, hence both)."""
    directory = multiprocess_dir()
    if directory:
        multiprocess.mark_process_dead(os.getpid(), directory)


if multiprocess_dir():
    atexit.register(forget_this_process)
