#!/usr/bin/env python
"""Benchmark: a page of a customer's ledger or events, on a short history and a long one.

    .venv/bin/python bench/history_pages.py                  # PostgreSQL: 100k rows against 10M rows
    .venv/bin/python bench/history_pages.py --backend sqlite --large 1000000
    .venv/bin/python bench/history_pages.py --tiny           # both backends, seconds (the test command runs this)

Two databases are seeded in bulk with ledger entries and events: a small one (`--small` rows of
each) and a large one (`--large` rows of each), spread over customers with `--per-customer`
rows each, so the large one has many more customers, as a growing app does. In both, `--heavy`
customers also have a long history of their own (`--heavy-rows` entries and events each), the
same in both databases. The benchmark then asks, `--requests` times each, in alternating rounds
on the two databases (so that other load on the machine weighs on both alike), for pages the way
the API does (`list_entries`, `list_events`): the first page of an ordinary customer's ledger, a
page in the middle of a heavy customer's ledger (`starting_after`), a heavy customer's first page
of events, and the first page of everyone's events. It reports p50 and p99 per page and database,
and the ratio large / small of each p99, with the goal: within 1.5x.

On PostgreSQL the tables are partitioned by month (migration 0015): both databases hold a year
of monthly partitions, each customer's history spread over them oldest first, so a page reads
the partitions the way it would on a year-old installation.

Results go to bench/results/history_pages.json (see `--out`); PostgreSQL databases are created
and dropped by the benchmark (`cfbench_ledger_*`, as bench/ledger_check.py names them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from dateutil.relativedelta import relativedelta  # noqa: E402
from sqlalchemy import text  # noqa: E402

from creditflow.credits.balance import list_entries  # noqa: E402
from creditflow.events.service import list_events  # noqa: E402
from creditflow.kit.db import Database  # noqa: E402
from creditflow.kit.db import partitions  # noqa: E402
from creditflow.kit.db.partitions import add_months  # noqa: E402
from creditflow.kit.ids import derived_id, made_at  # noqa: E402
from creditflow.migrations.runner import upgrade  # noqa: E402
from ledger_check import _Database, _numbers  # noqa: E402  (the same throwaway databases)

NOW_AT = datetime(2026, 3, 10, 10, tzinfo=timezone.utc)
NOW = f"'{NOW_AT:%Y-%m-%d %H:%M:%S}+00'"


def seed(db: Database, rows: int, per_customer: int, heavy: int, heavy_rows: int) -> int:
    """`rows` ledger entries and as many events over `rows / per_customer` customers, plus
    `heavy` customers with `heavy_rows` of each; returns how many customers in all."""
    customers = max(rows // per_customer, 1)
    everyone = customers + heavy
    if db.is_postgres:
        with db.transaction() as session:
            year = [add_months(date(2026, 3, 1), -n) for n in range(12)]
            partitions.ensure_months(session.connection(), year)
    with db.transaction() as session:
        _numbers(session, max(everyone, per_customer, heavy_rows))
        _id_times(session, db.is_postgres)
        params = {"everyone": everyone, "customers": customers, "per": per_customer, "heavy_rows": heavy_rows}
        joined = (f"({NOW}::timestamptz - interval '1 year')" if db.is_postgres else NOW)  # before their history
        session.execute(text(
            "INSERT INTO customers (id, external_id, email, timezone, balance, currency, created_at) "
            f"SELECT 'cus_h' || c.i, 'ext_h' || c.i, 'h' || c.i || '@example.com', 'UTC', 0, 'usd', {joined} "
            "FROM bench_n c WHERE c.i <= :everyone"), params)
        session.execute(text(
            "INSERT INTO credit_accounts (customer_id, granted, spent, expired, held, available) "
            "SELECT 'cus_h' || c.i, 0, 0, 0, 0, 0 FROM bench_n c WHERE c.i <= :everyone"), params)
        # Ordinary customers: `per` rows each, numbered row by row across customers (as a live
        # ledger interleaves them); heavy customers (the last `heavy` ids): `heavy_rows` each.
        # On PostgreSQL the rows span the year before NOW, a month partition each (as the worker
        # made them), each customer's oldest rows in the oldest month: the layout a year of
        # history has. SQLite has no partitions: every row at NOW. Ledger entry ids spell the
        # millisecond they were written in, as the product's do (a page after a cursor uses it).
        for count, where in ((":per", "c.i <= :customers"), (":heavy_rows", "c.i > :customers AND c.i <= :everyone")):
            month = f"(r.i - 1) * 12 / {count}"
            when = (f"({NOW}::timestamptz - (11 - {month}) * interval '1 month')" if db.is_postgres else NOW)
            for table, columns, values in (
                    ("credit_entries", "id, customer_id, lot_id, kind, amount, reference, created_at",
                     "'cre_' || t.spelled || c.i || 'X' || r.i, 'cus_h' || c.i, NULL, 'grant', 0, 'r' || r.i, " + when),
                    ("events", "id, type, customer_id, data, created_at, dispatched, notified",
                     "'evt_' || c.i || '_' || r.i, 'customer.updated', 'cus_h' || c.i, '{}', " + when + ", true, true")):
                session.execute(text(
                    f"INSERT INTO {table} ({columns}) SELECT {values} FROM bench_n r JOIN bench_n c ON {where} "
                    f"JOIN bench_id_times t ON t.month = {month} WHERE r.i <= {count} ORDER BY r.i, c.i"), params)
        session.execute(text("DROP TABLE bench_n"))
        session.execute(text("DROP TABLE bench_id_times"))
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if db.is_postgres else "ANALYZE"))
    return everyone


def _id_times(session, monthly: bool) -> None:
    """The twelve months' times as an id spells them (`kit/ids.py`): month 0 is the oldest. On
    SQLite every row is written at NOW."""
    session.execute(text("CREATE TABLE bench_id_times (month INTEGER PRIMARY KEY, spelled TEXT)"))
    for month in range(12):
        at = NOW_AT - relativedelta(months=11 - month) if monthly else NOW_AT
        session.execute(text("INSERT INTO bench_id_times VALUES (:month, :spelled)"),
                        {"month": month, "spelled": derived_id("cre", at)[4:14]})


def _pages(db: Database, customers: int, heavy: int, heavy_rows: int, rng: random.Random) -> dict:
    """The pages to ask for on one database, each a function of a read session."""
    ordinary = customers - heavy
    heavy_ids = [f"cus_h{ordinary + i}" for i in range(1, heavy + 1)]
    middle = {}
    with db.transaction(readonly=True) as session:
        for customer in heavy_ids:  # an entry half-way through each heavy customer's history
            page = list_entries(session, customer, limit=100)
            for _ in range(heavy_rows // 200):
                page = list_entries(session, customer, limit=100, starting_after=page.data[-1].id)
            middle[customer] = page.data[-1].id
            # The id spells when the entry was written, as the product's ids do.
            assert made_at(page.data[-1].id) == page.data[-1].created_at, page.data[-1]
    return {
        "ledger_first_page": lambda s: list_entries(s, f"cus_h{rng.randint(1, ordinary)}", limit=20),
        "ledger_middle_of_a_long_history": lambda s: list_entries(
            s, (c := rng.choice(heavy_ids)), limit=20, starting_after=middle[c]),
        "events_of_a_long_history": lambda s: list_events(s, customer=rng.choice(heavy_ids), limit=20),
        "events_of_everyone": lambda s: list_events(s, limit=20),
    }


def _timed(db: Database, call) -> float:
    started = time.perf_counter()
    with db.transaction(readonly=True) as session:
        call(session)
    return (time.perf_counter() - started) * 1000


def measure(dbs: dict[str, Database], pages: dict[str, dict], requests: int, rounds: int = 10) -> dict:
    """Every page on every database, in alternating rounds (small, large, small, ...), so that
    whatever else the machine does weighs on both alike; p50 and p99 per page and database."""
    samples: dict[str, dict[str, list[float]]] = {label: {name: [] for name in pages[label]} for label in dbs}
    for label, db in dbs.items():  # warm-up
        for call in pages[label].values():
            for _ in range(20):
                _timed(db, call)
    for _ in range(rounds):
        for label, db in dbs.items():
            for name, call in pages[label].items():
                samples[label][name] += [_timed(db, call) for _ in range(max(requests // rounds, 1))]
    results = {}
    for label, by_page in samples.items():
        results[label] = {}
        for name, values in by_page.items():
            values.sort()
            results[label][name] = {"p50_ms": round(statistics.median(values), 3),
                                    "p99_ms": round(values[max(int(len(values) * 0.99) - 1, 0)], 3)}
    return results


def run_backend(backend: str, args, workdir: Path) -> dict:
    targets, dbs, sizes, pages = {}, {}, {}, {}
    try:
        for label, rows in (("small", args.small), ("large", args.large)):
            targets[label] = target = _Database(backend, workdir / label if backend == "sqlite" else workdir)
            upgrade(target.url)
            dbs[label] = db = Database(target.url)
            started = time.perf_counter()
            customers = seed(db, rows, args.per_customer, args.heavy, args.heavy_rows)
            sizes[label] = {"rows_each": rows + args.heavy * args.heavy_rows, "customers": customers,
                            "seed_seconds": round(time.perf_counter() - started, 1)}
            pages[label] = _pages(db, customers, args.heavy, args.heavy_rows, random.Random(1))
        measured = measure(dbs, pages, args.requests)
    finally:
        for db in dbs.values():
            db.dispose()
        for target in targets.values():
            target.drop()
    for label in sizes:
        sizes[label]["pages"] = measured[label]
    ratios = {name: round(sizes["large"]["pages"][name]["p99_ms"] / sizes["small"]["pages"][name]["p99_ms"], 2)
              for name in sizes["small"]["pages"]}
    return {"backend": backend, **sizes, "p99_large_to_small": ratios}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="postgres")
    parser.add_argument("--small", type=int, default=100_000, help="ledger entries (and events) in the small database")
    parser.add_argument("--large", type=int, default=10_000_000, help="... and in the large one")
    parser.add_argument("--per-customer", type=int, default=10)
    parser.add_argument("--heavy", type=int, default=20, help="customers with a long history, in both databases")
    parser.add_argument("--heavy-rows", type=int, default=5_000, help="entries and events of each of them")
    parser.add_argument("--requests", type=int, default=2000, help="pages asked for, of each kind")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "history_pages.json")
    args = parser.parse_args()
    if args.tiny:
        args.backend, args.small, args.large, args.heavy, args.heavy_rows, args.requests = \
            "both", 200, 2_000, 3, 400, 30
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    runs = []
    with tempfile.TemporaryDirectory() as workdir:
        for backend in backends:
            (Path(workdir) / "small").mkdir(exist_ok=True)
            (Path(workdir) / "large").mkdir(exist_ok=True)
            result = run_backend(backend, args, Path(workdir))
            print(json.dumps(result), flush=True)
            runs.append(result)
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "runs": runs,
        "summary": {"goals": {f"{r['backend']}_{name}_p99_within_1.5x": ratio <= 1.5
                              for r in runs for name, ratio in r["p99_large_to_small"].items()}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
