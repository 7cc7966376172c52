#!/usr/bin/env python
"""Benchmark: spends per second on PostgreSQL with a year of history, against a short history.

    .venv/bin/python bench/spend_scale.py                    # 100k entries against 10M and 1M customers
    .venv/bin/python bench/spend_scale.py --tiny             # seconds (the test command runs this)

Two PostgreSQL databases, migrated (so partitioned by month, as the product is), each with a
year of monthly partitions (March 2025 to March 2026, NOW being 2026-03-10 as in
bench/spend.py) and the same `--active` customers ready to spend (bench/spend.py's seeding:
today's free lot, a large top-up lot, a few earlier spends). Around them, history: the small
database has `--small-entries` ledger entries in all, the large one `--large-entries` over
`--large-customers` customers (each with a lot, a grant and spends spread over the year, oldest
first, with their account totals), bulk-inserted by SQL.

`--clients` client processes per database (bench/spend.py's, the service contestant:
`spend_credits`, each call its own transaction) spend on random active customers, in
alternating rounds on the two databases (small, large, large, small, ...) so that other load on
the machine weighs on both alike, after an unmeasured warm-up of each. Goal: the large database
spends at least 0.8 of the small one's rate. Afterwards each database must hold exactly as many
new spends as its clients counted.

Results go to bench/results/spend_scale.json (see `--out`); the databases (`cfbench_spend_*`)
are created and dropped by the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import spend  # noqa: E402  (bench/spend.py: its seeding and its client processes)
from sqlalchemy import text  # noqa: E402

from creditflow.kit.db import Database  # noqa: E402
from creditflow.kit.db.partitions import add_months, ensure_months, is_partitioned  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "spend_scale.json"
GOAL = 0.8
THIS_MONTH = date(2026, 3, 1)  # bench/spend.py's NOW


def seed_history(url: str, customers: int, entries: int) -> dict:
    """`customers` more customers with `entries` ledger entries between them: per customer a
    promo lot, its grant and spends of 1 credit, spread over the year before NOW (oldest first),
    with the lot and account totals to match. Numbered entry by entry across customers, as a
    live ledger interleaves them."""
    db = Database(url)
    started = time.perf_counter()
    try:
        per = max(entries // max(customers, 1), 1)
        spends = per - 1
        params = {"customers": customers, "per": per, "granted": per * 1000 + 100_000, "spent": spends * 1000}
        when = (f"('{spend.NOW.isoformat()}'::timestamptz - (11 - (r.i - 1) * 12 / :per) * interval '1 month' "
                "- interval '1 hour')")
        with db.transaction() as session:
            session.execute(text(
                "INSERT INTO customers (id, external_id, email, timezone, balance, currency, created_at) "
                "SELECT 'cus_h' || c.i, 'hist-' || c.i, 'h' || c.i || '@example.com', 'UTC', 0, 'usd', "
                f"'{spend.NOW.isoformat()}'::timestamptz - interval '1 year' FROM generate_series(1, :customers) c(i)"),
                params)
            session.execute(text(
                "INSERT INTO credit_accounts (customer_id, granted, spent, expired, held, available) "
                "SELECT 'cus_h' || c.i, :granted, :spent, 0, 0, :granted - :spent "
                "FROM generate_series(1, :customers) c(i)"), params)
            session.execute(text(
                "INSERT INTO credit_lots (id, customer_id, kind, granted, remaining, reason, created_at) "
                "SELECT 'lot_h' || c.i, 'cus_h' || c.i, 'promo', :granted, :granted - :spent, 'bench', "
                f"'{spend.NOW.isoformat()}'::timestamptz - interval '1 year' FROM generate_series(1, :customers) c(i)"),
                params)
            session.execute(text(
                "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
                "SELECT 'cre_h' || c.i || '_' || r.i, 'cus_h' || c.i, 'lot_h' || c.i, "
                "CASE WHEN r.i = 1 THEN 'grant' ELSE 'spend' END, CASE WHEN r.i = 1 THEN :granted ELSE 1000 END, "
                f"'h' || r.i, {when} FROM generate_series(1, :per) r(i), generate_series(1, :customers) c(i)"), params)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            count = conn.execute(text("SELECT count(*) FROM credit_entries")).scalar_one()
            partitions = conn.execute(text(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'credit_entries'::regclass")).scalar_one()
            partitioned = is_partitioned(conn, "credit_entries")
    finally:
        db.dispose()
    return {"ledger_entries": count, "customers": customers, "partitions": partitions, "partitioned": partitioned,
            "seed_seconds": round(time.perf_counter() - started, 1)}


def prepare(active: int, customers: int, entries: int, workdir: Path) -> tuple[str, dict]:
    url = spend.create_database("postgresql", workdir)
    db = Database(url)
    try:
        with db.transaction() as session:  # a year of months, as the worker made them
            ensure_months(session.connection(), [add_months(THIS_MONTH, -n) for n in range(-2, 12)])
    finally:
        db.dispose()
    started = time.perf_counter()
    spend.seed(url, active)
    active_seconds = time.perf_counter() - started
    history_entries = max(entries - active * (2 + spend.HISTORY), 0)
    size = seed_history(url, max(customers - active, 1), history_entries)
    size["customers"] += active
    size["active_customers"] = active
    size["seed_seconds"] = round(size["seed_seconds"] + active_seconds, 1)
    return url, size


def count_new_spends(url: str, active: int) -> int:
    db = Database(url)
    try:
        with db.transaction(readonly=True) as session:
            return session.execute(text(
                "SELECT count(*) FROM credit_spends WHERE customer_id LIKE 'cus_s%'")).scalar_one() - active * spend.HISTORY
    finally:
        db.dispose()


def measure(urls: dict[str, str], active: int, clients: int, seconds: float, rounds: int, warmup: float) -> dict:
    pools = {label: spend.Clients(url, clients) for label, url in urls.items()}
    totals = {label: {"spends": 0, "seconds": 0.0, "latencies": [], "rounds": []} for label in urls}
    counted = dict.fromkeys(urls, 0)
    try:
        for label, pool in pools.items():
            counted[label] += sum(r["spends"] for r in pool.round("service", f"{label}-warmup", warmup, active))
        order: list[str] = []
        for r in range(rounds):  # ABBA
            order += [("small", "large"), ("large", "small")][r % 2]
        for n, label in enumerate(order):
            results = pools[label].round("service", f"{label}-{n}", seconds / rounds, active)
            spends = sum(r["spends"] for r in results)
            took = max(r["seconds"] for r in results)
            counted[label] += spends
            totals[label]["spends"] += spends
            totals[label]["seconds"] += took
            totals[label]["rounds"].append(round(spends / took, 1))
            for r in results:
                totals[label]["latencies"] += r["latencies"]
    finally:
        for pool in pools.values():
            pool.close()
    out = {}
    for label, t in totals.items():
        lat = sorted(t["latencies"]) or [0.0]
        out[label] = {"spends": t["spends"], "seconds": round(t["seconds"], 2),
                      "spends_per_second": round(t["spends"] / t["seconds"], 1), "per_round": t["rounds"],
                      "p50_ms": round(1000 * lat[len(lat) // 2], 2),
                      "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
                      "new_spends_counted": counted[label]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--active", type=int, default=10_000, help="customers the clients spend for (both databases)")
    parser.add_argument("--small-entries", type=int, default=100_000)
    parser.add_argument("--small-customers", type=int, default=20_000)
    parser.add_argument("--large-entries", type=int, default=10_000_000)
    parser.add_argument("--large-customers", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per database")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.tiny:
        args.active, args.small_entries, args.small_customers = 100, 1_000, 200
        args.large_entries, args.large_customers = 20_000, 2_000
        args.clients, args.seconds, args.rounds, args.warmup = 2, 2.0, 2, 0.5
    load_before = os.getloadavg()
    urls: dict[str, str] = {}
    sizes: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for label, entries, customers in (("small", args.small_entries, args.small_customers),
                                              ("large", args.large_entries, args.large_customers)):
                urls[label], sizes[label] = prepare(args.active, customers, entries, Path(workdir))
                spend.log(f"{label}: {json.dumps(sizes[label])}")
            measured = measure(urls, args.active, args.clients, args.seconds, args.rounds, args.warmup)
            for label, url in urls.items():
                sizes[label].update(measured[label])
                recorded = count_new_spends(url, args.active)
                sizes[label]["new_spends_recorded"] = recorded
                sizes[label]["verified"] = recorded == measured[label]["new_spends_counted"]
    finally:
        for url in urls.values():
            spend.drop_database(url)
    ratio = round(sizes["large"]["spends_per_second"] / sizes["small"]["spends_per_second"], 3)
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "small": sizes["small"], "large": sizes["large"],
        "large_to_small": ratio,
        "summary": {"all_verified": all(s["verified"] for s in sizes.values()),
                    "goals": {"large_at_least_0.8_of_small": ratio >= GOAL}},
    }
    print(json.dumps(report), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0 if report["summary"]["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
