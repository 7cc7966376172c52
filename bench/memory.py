#!/usr/bin/env python
"""Benchmark: the memory of `creditflow serve` and `creditflow worker` stays flat under a long run.

    .venv/bin/python bench/memory.py                        # SQLite, 30 minutes each at 300 spends/s
    .venv/bin/python bench/memory.py --minutes 10           # shorter
    .venv/bin/python bench/memory.py --backend postgres     # PostgreSQL (CREDITFLOW_TEST_POSTGRES_URL)
    .venv/bin/python bench/memory.py --tiny                 # a few seconds each, what the test suite runs
    .venv/bin/python bench/memory.py --only serve           # or --only worker

Two parts, each a real process started the way an operator would, whose resident memory (RSS,
the process and any children, from /proc) is sampled every few seconds:

- `serve`: `creditflow serve` (its worker thread on, the access log off) on a migrated database
  with seeded customers, sent spends at a fixed rate (open loop, bench/http_spends.py's client)
  for `--minutes`: most with a new reference and a new Idempotency-Key, over every customer; one
  in ten a replay of an earlier request (same key and body); one in fifty for an unknown
  customer (404) and one in fifty for more credits than the customer has. Every request carries
  an Idempotency-Key, so idempotency records, rate-limit buckets, the key cache, metrics series,
  prepared statements and the log context all see traffic for the whole run.
- `worker`: `creditflow worker` draining a queue of monthly renewals all due (seeded with
  bench/renewals.py's seeding, moved to the latest due date before now), for `--minutes` or
  until the queue is empty.

Each part reports the RSS after the warm-up (the first minute; a fifth of a --tiny run), at the
end and at its peak, the growth ratio end / warm-up, and the goal of issue 17: within 10%. A part
is also verified, so that a run which did nothing cannot look flat: serve answered every kind
of request as expected with no 5xx or broken connection, and the ledger check passes; the
worker renewed what it claims (one paid renewal invoice per renewed subscription).

Results go to bench/results/memory.json (see --out).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import http_spends  # noqa: E402 - the HTTP client, servers' start and seeding of bench/http_spends.py
import renewals  # noqa: E402 - the renewal seeding of bench/renewals.py

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "memory.json"
GOAL_MAX_GROWTH = 1.10
CLI = [sys.executable, "-m", "creditflow.cli"]


# ------------------------------------------------------------------------------------------
# Resident memory of a process tree, from /proc (psutil is not a dependency).
# ------------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            found += [int(child) for child in text]
    except OSError:
        pass
    return found


def rss_kb(pid: int) -> int:
    """VmRSS of `pid` and all its descendants, in KiB (0 for a process gone)."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
        todo += _children(current)
    return total


def summary_of(samples: list[tuple[float, int]], warmup: float) -> dict:
    """RSS after the warm-up (the first sample at or after `warmup` seconds), at the end, at the
    peak, and the growth from the first to the second."""
    after_warmup = next((kb for t, kb in samples if t >= warmup), samples[-1][1])
    end = samples[-1][1]
    growth = round(end / after_warmup, 4) if after_warmup else None
    return {"rss_kb_after_warmup": after_warmup, "rss_kb_at_end": end,
            "rss_kb_peak": max(kb for _, kb in samples), "rss_kb_at_start": samples[0][1],
            "growth_end_vs_warmup": growth, "rss_kb_per_minute_second_half": slope(samples),
            "goal_within_10pct": {"max_growth": GOAL_MAX_GROWTH,
                                  "met": growth is not None and growth <= GOAL_MAX_GROWTH}}


def slope(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares growth of RSS over the second half of the run, in KiB per minute: whether
    what growth there is still goes on at the end (a leak) or has levelled off (caches filled)."""
    half = [(t, kb) for t, kb in samples if t >= samples[-1][0] / 2]
    if len(half) < 2:
        return None
    mean_t = sum(t for t, _ in half) / len(half)
    mean_kb = sum(kb for _, kb in half) / len(half)
    spread = sum((t - mean_t) ** 2 for t, _ in half)
    if not spread:
        return None
    return round(60 * sum((t - mean_t) * (kb - mean_kb) for t, kb in half) / spread, 1)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# serve: spends at a fixed rate.
# ------------------------------------------------------------------------------------------

def spend_requests(customers: list[str], run_id: str):
    """Request i, deterministic: see the module docstring for the mix."""
    headers = {"Authorization": f"Bearer {http_spends.KEY}", "Content-Type": "application/json"}
    stride = 7919  # a prime: consecutive requests go to customers far apart

    def kind(i: int) -> str:
        if i % 10 == 3 and i >= 10:
            return "replay"
        if i % 50 == 7:
            return "unknown_customer"
        if i % 50 == 17:
            return "insufficient"
        return "spend"

    def make(i: int) -> bytes:
        what = kind(i)
        if what == "replay":
            i -= 1  # request i-1: a plain spend (i-1 ends in 2), sent again as it was
        customer = customers[(i * stride) % len(customers)]
        amount = "1"
        if what == "unknown_customer":
            customer = f"cus_missing_{i}"
        elif what == "insufficient":
            amount = "999999999"
        body = json.dumps({"amount": amount, "feature": "standard_models", "reference": f"{run_id}-{i}"}).encode()
        return http_spends.http_request("POST", f"/v1/customers/{customer}/credits/spend", body,
                                        {**headers, "Idempotency-Key": f"{run_id}-key-{i}"})

    return make, kind


def run_serve(backend: str, minutes: float, rate: float, customers: int, sample_every: float, warmup: float,
              workdir: str) -> dict:
    drop = None
    if backend == "postgres":
        db_url, drop = http_spends.postgres_database()
    else:
        db_url = f"sqlite:///{workdir}/serve.db"
    try:
        started = time.perf_counter()
        ids = http_spends.seed(db_url, customers)
        log(f"serve: seeded {customers} customers in {time.perf_counter() - started:.1f}s")
        run_id = uuid.uuid4().hex[:8]
        make, kind = spend_requests(ids, run_id)
        port = http_spends.free_port()
        env = {**os.environ, "CREDITFLOW_DATABASE_URL": db_url, "CREDITFLOW_BOOTSTRAP_KEYS": f"{http_spends.KEY}:server",
               "CREDITFLOW_RATE_LIMIT": "1000000", "CREDITFLOW_SECRET_KEY": "bench"}
        server = subprocess.Popen(CLI + ["serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                                         "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL)
        try:
            http_spends.wait_ready(port, server, "/healthz")
            statuses: dict[str, int] = {}
            totals = {"due": 0, "sent": 0, "not_sent": 0, "ok": 0, "errors": 0}
            samples = [(0.0, rss_kb(server.pid))]
            began, sent_so_far = time.monotonic(), 0
            cpu_before = http_spends.cpu_seconds(server.pid)
            while time.monotonic() - began < minutes * 60:
                chunk = min(sample_every, minutes * 60 - (time.monotonic() - began))
                offset = sent_so_far
                row = asyncio.run(http_spends.run_rate(port, lambda i: make(offset + i), rate, max(chunk, 0.2),
                                                       connections=64))
                sent_so_far += row["due"]
                for key in totals:
                    totals[key] += row[key]
                for status, count in row["statuses"].items():
                    statuses[status] = statuses.get(status, 0) + count
                samples.append((round(time.monotonic() - began, 2), rss_kb(server.pid)))
                if len(samples) % 6 == 0:
                    log(f"serve: {samples[-1][0]:7.1f}s RSS {samples[-1][1] / 1024:7.1f} MiB, "
                        f"{totals['ok']:,} answered 2xx")
            seconds = time.monotonic() - began
            cpu_after = http_spends.cpu_seconds(server.pid)
        finally:
            http_spends.stop(server)
        kinds = {}
        for i in range(sent_so_far):
            kinds[kind(i)] = kinds.get(kind(i), 0) + 1
        verified = verify_serve(db_url, statuses, totals)
    finally:
        if drop:
            drop()
    return {"part": "serve", "backend": backend, "minutes": minutes, "target_rate": rate, "customers": customers,
            "seconds": round(seconds, 1), "achieved_rate_2xx": round(totals["ok"] / seconds, 1), **totals,
            "statuses": statuses, "requests_by_kind": kinds,
            "server_cpu_seconds": round(cpu_after - cpu_before, 1) if cpu_before is not None else None,
            **summary_of(samples, warmup), "samples": samples, "verified": verified}


def verify_serve(db_url: str, statuses: dict[str, int], totals: dict) -> dict:
    """Every kind of request answered as it should be (spends and replays 2xx, an unknown
    customer 404, too large a spend 4xx), nothing 5xx or broken, and the ledger check passes."""
    from sqlalchemy import func, select

    from creditflow.credits.models import CreditSpend
    from creditflow.kit.db import Database

    database = Database(db_url)
    try:
        with database.transaction(readonly=True) as session:
            spends = session.scalar(select(func.count()).select_from(CreditSpend))
    finally:
        database.dispose()
    check = subprocess.run(CLI + ["ledger", "check", "--database-url", db_url], capture_output=True, text=True,
                           timeout=600)
    answered_2xx = sum(n for s, n in statuses.items() if s.startswith("2"))
    failed = {s: n for s, n in statuses.items() if s.startswith("5")}
    unexpected = {s: n for s, n in statuses.items() if s[0] not in "24"}
    found = {"spends_in_database": spends, "answered_2xx": answered_2xx, "answered_404": statuses.get("404", 0),
             "answered_other_4xx": sum(n for s, n in statuses.items() if s.startswith("4") and s != "404"),
             "answered_5xx": sum(failed.values()), "broken_connections": totals["errors"] - sum(
                 n for s, n in statuses.items() if not s.startswith("2")),
             "ledger_check_exit_code": check.returncode}
    ok = (0 < spends <= answered_2xx and found["answered_404"] > 0 and found["answered_other_4xx"] > 0
          and not failed and not unexpected and found["broken_connections"] == 0 and check.returncode == 0)
    return {"ok": ok, "found": found}


# ------------------------------------------------------------------------------------------
# worker: a queue of due renewals.
# ------------------------------------------------------------------------------------------

def _move_renewal_dates(now: datetime) -> None:
    """bench/renewals.py seeds subscriptions due at its fixed DUE; `creditflow worker` runs on
    the wall clock, so the seeding is moved to the latest 10th of a month at 10:00 before now:
    every subscription is due once, and its next term is in the future."""
    def month(year: int, m: int) -> datetime:
        year, m = year + (m - 1) // 12, (m - 1) % 12 + 1
        return datetime(year, m, 10, 10, 0, tzinfo=timezone.utc)

    due = month(now.year, now.month)
    if due > now:
        due = month(now.year, now.month - 1)
    renewals.DUE = due
    renewals.ANCHOR = month(due.year, due.month - 1)
    renewals.NEXT = month(due.year, due.month + 1)


def run_worker(backend: str, minutes: float, subscriptions: int, sample_every: float, warmup: float,
               workdir: str, patience: float = 0.0) -> dict:
    _move_renewal_dates(datetime.now(timezone.utc))
    pg = renewals.Backend("postgresql", Path(workdir)) if backend == "postgres" else None
    try:
        from creditflow.migrations.runner import upgrade

        if pg is not None:
            db_url = pg.template(subscriptions)  # migrated and seeded
        else:
            db_url = f"sqlite:///{workdir}/worker.db"
            upgrade(db_url)
            started = time.perf_counter()
            renewals.seed(db_url, subscriptions)
            log(f"worker: seeded {subscriptions:,} subscriptions in {time.perf_counter() - started:.1f}s")
        env = {**os.environ, "CREDITFLOW_DATABASE_URL": db_url}
        worker_log = open(Path(workdir) / "worker.log", "w")  # a line per job run: kept out of the report
        worker = subprocess.Popen(CLI + ["worker", "--interval", "0.5"], env=env, stdout=worker_log,
                                  stderr=subprocess.STDOUT)
        try:
            samples = [(0.0, rss_kb(worker.pid))]
            began = time.monotonic()
            drained_at = None
            renewed = 0
            # A short run on a busy machine may end before the worker has even started: it goes
            # on past `minutes`, by at most `patience` seconds, until a first renewal is done.
            while (time.monotonic() - began < minutes * 60
                   or (renewed == 0 and time.monotonic() - began < minutes * 60 + patience)):
                remaining = minutes * 60 - (time.monotonic() - began)
                time.sleep(min(sample_every, remaining) if remaining > 0 else sample_every)
                if worker.poll() is not None:
                    tail = (Path(workdir) / "worker.log").read_text()[-3000:]
                    raise RuntimeError(f"creditflow worker exited with {worker.returncode}:\n{tail}")
                samples.append((round(time.monotonic() - began, 2), rss_kb(worker.pid)))
                if len(samples) % 6 == 0 or drained_at is None:
                    done = renewals.verify(db_url, subscriptions, partial=True, in_flight=_in_flight())
                    renewed = done["renewals_done"]
                    if len(samples) % 6 == 0:
                        log(f"worker: {samples[-1][0]:7.1f}s RSS {samples[-1][1] / 1024:7.1f} MiB, "
                            f"{done['renewals_done']:,} renewed")
                    if drained_at is None and done["renewals_done"] == subscriptions:
                        drained_at = samples[-1][0]
            seconds = time.monotonic() - began
            cpu = http_spends.cpu_seconds(worker.pid)
        finally:
            http_spends.stop(worker)
            worker_log.close()
        checked = renewals.verify(db_url, subscriptions, partial=True, in_flight=_in_flight())
        checked.pop("last_charge_at", None)
        done = checked["renewals_done"]
        verified = {"ok": checked["ok"] and done > 0, "found": checked["found"]}
    finally:
        if pg is not None:
            pg.close()
    return {"part": "worker", "backend": backend, "minutes": minutes, "subscriptions_due": subscriptions,
            "renewed": done, "drained": done == subscriptions, "drained_after_seconds": drained_at,
            "seconds": round(seconds, 1), "renewals_per_second": round(done / seconds, 1),
            "worker_cpu_seconds": round(cpu, 1) if cpu is not None else None,
            **summary_of(samples, warmup), "samples": samples, "verified": verified}


def _in_flight() -> int:
    from creditflow.purchase.renewal import GROUP

    return GROUP


# ------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of each part (default 30)")
    parser.add_argument("--rate", type=float, default=300.0, help="spends per second sent to serve (default 300)")
    parser.add_argument("--customers", type=int, default=500, help="seeded customers spent from (default 500)")
    parser.add_argument("--subscriptions", type=int, default=None,
                        help="renewals due for the worker (default: 200 a second of the run, at most 1,000,000)")
    parser.add_argument("--only", choices=("serve", "worker"), default=None)
    parser.add_argument("--tiny", action="store_true", help="a few seconds each (the smoke test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    sample_every, warmup = 10.0, 60.0
    if args.tiny:
        args.minutes, args.rate, args.customers, sample_every = 0.1, 50.0, 5, 0.5
        args.subscriptions = args.subscriptions or 100
    warmup = min(warmup, args.minutes * 60 / 5)
    subscriptions = args.subscriptions or min(1_000_000, int(200 * args.minutes * 60))
    load_before = os.getloadavg()
    importlib.import_module("creditflow.purchase.renewal")  # now, not half an hour into the run

    parts: list[dict] = []

    def write() -> dict:  # after each part, so that a part that fails leaves the others' results
        report = {
            "benchmark": "memory", "tiny": args.tiny, "backend": args.backend, "minutes": args.minutes,
            "warmup_seconds": warmup, "sample_every_seconds": sample_every,
            "parts": {part["part"]: part for part in parts},
            "all_verified": all(part["verified"]["ok"] for part in parts),
            "goals_met": {part["part"]: part["goal_within_10pct"]["met"] for part in parts},
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                        # Other processes on the machine skew the rates: say how busy it was.
                        "load_average_at_start": [round(x, 2) for x in load_before],
                        "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        return report

    with tempfile.TemporaryDirectory(prefix="cfbench_memory_") as workdir:
        if args.only in (None, "serve"):
            parts.append(run_serve(args.backend, args.minutes, args.rate, args.customers, sample_every, warmup,
                                   workdir))
            write()
            log(f"serve: RSS {parts[-1]['rss_kb_after_warmup'] / 1024:.1f} MiB after warm-up, "
                f"{parts[-1]['rss_kb_at_end'] / 1024:.1f} MiB at the end: x{parts[-1]['growth_end_vs_warmup']}")
        if args.only in (None, "worker"):
            parts.append(run_worker(args.backend, args.minutes, subscriptions, sample_every, warmup, workdir,
                                    patience=120.0 if args.tiny else 0.0))
            log(f"worker: RSS {parts[-1]['rss_kb_after_warmup'] / 1024:.1f} MiB after warm-up, "
                f"{parts[-1]['rss_kb_at_end'] / 1024:.1f} MiB at the end: x{parts[-1]['growth_end_vs_warmup']}")
    report = write()
    log(json.dumps({k: report[k] for k in ("all_verified", "goals_met")}))
    log(f"written to {args.out}")
    return 0 if report["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
