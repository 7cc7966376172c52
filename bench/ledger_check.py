#!/usr/bin/env python
"""Benchmark: `creditflow ledger check`, full against incremental, on a long ledger.

    .venv/bin/python bench/ledger_check.py                         # PostgreSQL, 1M customers, 10M entries
    .venv/bin/python bench/ledger_check.py --backend sqlite --customers 100000
    .venv/bin/python bench/ledger_check.py --tiny                  # both backends, a few seconds

It seeds a ledger in bulk (`--customers` customers, `--entries` ledger entries each: a promo
grant, then spends, with their spend rows, lots and account totals all consistent), runs the
full check (which saves the checkpoint), adds `--new` spends and runs the incremental check. The
new spends come from `--new / --per-customer` customers spread over the whole range (20 each by
default: a day of generations by the customers active that day). It reports each check's
seconds, the process's peak memory, and the ratio incremental / full, with the goal: the incremental check of 100k new entries on a
10M-entry ledger takes under 5% of the full check's time. Both checks must find the ledger
sound, and the checkpoint must equal the ledger's sums afterwards.

Results go to bench/results/ledger_check.json (see `--out`). PostgreSQL: the admin URL is
CREDITFLOW_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres);
the benchmark creates and drops its own database (`cfbench_ledger_*`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from creditflow.credits.check import ENTRY_SUMS, run_ledger_check  # noqa: E402
from creditflow.kit.db import Database  # noqa: E402
from creditflow.kit.db.partitions import ensure_months  # noqa: E402
from creditflow.migrations.runner import upgrade  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "ledger_check.json"
PG_ADMIN_URL = os.environ.get("CREDITFLOW_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SPARE = 100_000  # thousandths each account keeps available, for the new spends
NOW = "'2026-03-10 10:00:00+00'"


def _numbers(session, upto: int) -> None:
    """A helper table of 1..upto, to generate rows with INSERT ... SELECT on both databases."""
    session.execute(text("CREATE TABLE bench_n (i INTEGER PRIMARY KEY)"))
    session.execute(text(
        "INSERT INTO bench_n (i) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
        "SELECT i FROM s"), {"n": upto})


def seed(db: Database, customers: int, entries: int) -> None:
    """Each customer: one promo lot granted (entries - 1) credits + SPARE, then (entries - 1)
    spends of 1 credit, each with its entry and spend row; totals to match."""
    spends = entries - 1
    granted = spends * 1000 + SPARE
    if db.is_postgres:  # NOW's month has its partition, as the worker would have made it
        with db.transaction() as session:
            ensure_months(session.connection(), [date(2026, 3, 1)])
    with db.transaction() as session:
        _numbers(session, max(customers, spends, 1))
        n = "FROM bench_n c WHERE c.i <= :customers"
        params = {"customers": customers, "spends": spends, "granted": granted}
        session.execute(text(
            "INSERT INTO customers (id, external_id, email, timezone, balance, currency, created_at) "
            f"SELECT 'cus_b' || c.i, 'ext_b' || c.i, 'b' || c.i || '@example.com', 'UTC', 0, 'usd', {NOW} {n}"),
            params)
        session.execute(text(
            "INSERT INTO credit_accounts (customer_id, granted, spent, expired, held, available) "
            f"SELECT 'cus_b' || c.i, :granted, :spends * 1000, 0, 0, {SPARE} {n}"), params)
        session.execute(text(
            "INSERT INTO credit_lots (id, customer_id, kind, granted, remaining, reason, created_at) "
            f"SELECT 'lot_b' || c.i, 'cus_b' || c.i, 'promo', :granted, {SPARE}, 'bench', {NOW} {n}"), params)
        session.execute(text(
            "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
            f"SELECT 'ent_b' || c.i || '_0', 'cus_b' || c.i, 'lot_b' || c.i, 'grant', :granted, NULL, {NOW} {n}"),
            params)
        # Spends numbered spend by spend across customers, as a live ledger interleaves them.
        session.execute(text(
            "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
            "SELECT 'ent_b' || c.i || '_' || s.i, 'cus_b' || c.i, 'lot_b' || c.i, 'spend', 1000, 'r' || s.i, "
            f"{NOW} FROM bench_n s JOIN bench_n c ON c.i <= :customers WHERE s.i <= :spends ORDER BY s.i, c.i"),
            params)
        session.execute(text(
            "INSERT INTO credit_spends (id, customer_id, kind, reference, feature, amount, status, draws, "
            "balance_after, created_at) "
            "SELECT 'spd_b' || c.i || '_' || s.i, 'cus_b' || c.i, 'spend', 'r' || s.i, 'standard_models', 1000, "
            f"'spent', '[]', {SPARE}, {NOW} FROM bench_n s JOIN bench_n c ON c.i <= :customers WHERE s.i <= :spends"),
            params)
        session.execute(text("DROP TABLE bench_n"))
    # A ledger that grew over months has been vacuumed: measure that, not the first scan of a
    # bulk load (which sets every row's hint bits).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if db.is_postgres else "ANALYZE"))


def add_spends(db: Database, customers: int, new: int, per_customer: int) -> None:
    """`new` spends of 0.001 credit by `new / per_customer` customers spread over the whole range
    (a day of an app whose active users each generate `per_customer` times)."""
    active = max(new // per_customer, 1)
    stride = max(customers // active, 1)
    with db.transaction() as session:
        _numbers(session, new)
        params = {"new": new, "stride": stride, "customers": customers, "active": active}
        number = "((((k.i - 1) % :active) * :stride) % :customers + 1)"
        who = f"'cus_b' || {number}"
        session.execute(text(
            "INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
            f"SELECT 'ent_new_' || k.i, {who}, 'lot_b' || {number}, 'spend', 1, "
            f"'new' || k.i, {NOW} FROM bench_n k WHERE k.i <= :new ORDER BY k.i"), params)
        session.execute(text(
            "INSERT INTO credit_spends (id, customer_id, kind, reference, feature, amount, status, draws, "
            f"balance_after, created_at) SELECT 'spd_new_' || k.i, {who}, 'spend', 'new' || k.i, "
            f"'standard_models', 1, 'spent', '[]', 0, {NOW} FROM bench_n k WHERE k.i <= :new"), params)
        counts = "(SELECT COUNT(*) FROM credit_spends s WHERE s.customer_id = {table}.customer_id AND s.id LIKE 'spd_new_%')"
        touched = "customer_id IN (SELECT customer_id FROM credit_spends WHERE id LIKE 'spd_new_%')"
        session.execute(text(
            f"UPDATE credit_accounts SET spent = spent + {counts.format(table='credit_accounts')}, "
            f"available = available - {counts.format(table='credit_accounts')} WHERE {touched}"))
        session.execute(text(
            f"UPDATE credit_lots SET remaining = remaining - {counts.format(table='credit_lots')} WHERE {touched}"))
        session.execute(text("DROP TABLE bench_n"))


def _checkpoint_matches_ledger(db: Database) -> bool:
    with db.transaction(readonly=True) as session:
        through = session.execute(text("SELECT through_seq FROM ledger_checkpoints WHERE id = 1")).scalar_one()
        differs = session.execute(text(f"""
            SELECT COUNT(*) FROM (SELECT customer_id, {ENTRY_SUMS} FROM credit_entries WHERE seq <= :t
                                  GROUP BY customer_id) e
            LEFT JOIN ledger_checkpoint_accounts c ON c.customer_id = e.customer_id
            WHERE c.customer_id IS NULL OR c.granted <> e.granted OR c.spent <> e.spent
               OR c.available <> e.available"""), {"t": through}).scalar_one()
    return differs == 0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Database:
    """A fresh database on the backend, dropped afterwards."""

    def __init__(self, backend: str, workdir: Path):
        self.backend = backend
        if backend == "sqlite":
            self.url = f"sqlite:///{workdir / 'ledger.db'}"
        else:
            self.name = f"cfbench_ledger_{uuid.uuid4().hex[:8]}"
            self._admin(f'CREATE DATABASE "{self.name}"')
            self.url = make_url(PG_ADMIN_URL).set(database=self.name).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def drop(self) -> None:
        if self.backend == "postgres":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def run_case(backend: str, customers: int, entries: int, new: int, per_customer: int, workdir: Path) -> dict:
    target = _Database(backend, workdir)
    try:
        upgrade(target.url)
        db = Database(target.url)
        started = time.perf_counter()
        seed(db, customers, entries)
        seeded = time.perf_counter() - started

        started = time.perf_counter()
        full = run_ledger_check(db, full=True)
        full_seconds = time.perf_counter() - started
        rss_after_full = _peak_rss_mb()

        add_spends(db, customers, new, per_customer)
        started = time.perf_counter()
        incremental = run_ledger_check(db)
        incremental_seconds = time.perf_counter() - started
        verified = {
            "full_clean": full.report.problems == [] and full.saved,
            "incremental_clean": incremental.report.problems == [] and incremental.saved,
            "incremental_saw_the_new_entries": incremental.report.entries == new,
            "checkpoint_equals_ledger": _checkpoint_matches_ledger(db),
        }
        db.dispose()
    finally:
        target.drop()
    return {
        "backend": backend, "customers": customers, "entries": customers * entries + new,
        "new_entries": new, "customers_with_new_entries": incremental.report.customers, "seed_seconds": round(seeded, 2),
        "full_seconds": round(full_seconds, 3), "incremental_seconds": round(incremental_seconds, 3),
        "incremental_to_full": round(incremental_seconds / full_seconds, 4) if full_seconds else None,
        "peak_rss_mb_after_full": round(rss_after_full, 1),
        "verified": verified, "ok": all(verified.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="postgres")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10, help="ledger entries per customer (a grant and spends)")
    parser.add_argument("--new", type=int, default=100_000, help="spends added before the incremental check")
    parser.add_argument("--per-customer", type=int, default=20,
                        help="new spends per customer who spends (20: a day of generations)")
    parser.add_argument("--tiny", action="store_true", help="a few hundred customers on both backends")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.tiny:
        args.backend, args.customers, args.entries, args.new, args.per_customer = "both", 300, 4, 40, 4
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    runs = []
    with tempfile.TemporaryDirectory() as workdir:
        for backend in backends:
            result = run_case(backend, args.customers, args.entries, args.new, args.per_customer, Path(workdir))
            print(json.dumps(result), flush=True)
            runs.append(result)
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "runs": runs,
        "summary": {
            "all_verified": all(r["ok"] for r in runs),
            "goals": {f"{r['backend']}_incremental_under_5_percent_of_full": r["incremental_to_full"] < 0.05
                      for r in runs if r["incremental_to_full"] is not None},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return 0 if report["summary"]["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
