#!/usr/bin/env python
"""Benchmark: N monthly renewals due at the same instant, drained by the worker.

    .venv/bin/python bench/renewals.py                      # N = 10,000 and 100,000
    .venv/bin/python bench/renewals.py --sizes 1000,5000
    .venv/bin/python bench/renewals.py --tiny               # N = 50, every mode, a few seconds
    .venv/bin/python bench/renewals.py --modes postgres-1,sqlite-1 --out /tmp/r.json

For each size and each mode (PostgreSQL with 1 and 2 worker processes, SQLite with 1) it runs
two contestants on identical copies of one seeded database:

- `engine`: worker processes calling the public `tick(ctx, now)` (sandbox gateway, no delay),
  which claims due subscriptions and renews each one: invoice and line, payment attempt,
  sandbox charge, the old month's lot expired and the new one granted with their ledger
  entries and account totals, events, the subscription moved to its next term;
- `baseline`: the same inserts and updates per renewal written by hand in raw SQL on the
  driver (psycopg / sqlite3): a claim per batch, then per renewal one transaction each to open
  the invoice and the pending attempt, for the sandbox's charge, and to settle and fulfil (the
  engine now opens and settles a group of renewals per transaction; the baseline was kept as it
  was, to compare with earlier runs).

Seeding is bulk (a template database seeded once per size and backend, then cloned; on
PostgreSQL with COPY). Both
contestants are checked afterwards: N paid renewal invoices, N new charges, N new lots.

Results go to bench/results/renewals.json (see `--out`): renewals per second, the ratio to
the baseline, 2 workers against 1, and the cost per renewal (worker-milliseconds) at each size
with its growth from the smallest size to the largest, plus the goals of issue 2.

PostgreSQL: the admin URL is CREDITFLOW_TEST_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres); the benchmark creates and drops its own
databases (`cfbench_*`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "renewals.json"
PG_ADMIN_URL = os.environ.get("CREDITFLOW_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

DUE = datetime(2026, 4, 10, 10, 0, tzinfo=timezone.utc)  # every subscription renews at this instant
ANCHOR = datetime(2026, 3, 10, 10, 0, tzinfo=timezone.utc)
NEXT = datetime(2026, 5, 10, 10, 0, tzinfo=timezone.utc)
PRICE = 3000  # Standard monthly
CREDITS_MILLI = 8000 * 1000
MODES = {"postgres-1": ("postgresql", 1), "postgres-2": ("postgresql", 2), "sqlite-1": ("sqlite", 1)}
GOALS = {"min_renewals_per_second_per_worker_postgres": 100, "min_two_workers_vs_one": 1.6,
         "max_cost_growth": 1.30}


# ------------------------------------------------------------------------------------------
# Databases: a migrated template per backend and size, seeded in bulk, cloned for every run.
# ------------------------------------------------------------------------------------------

def _pg_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _pg_admin():
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _pg_exec(sql: str) -> None:
    engine = _pg_admin()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


class Backend:
    """Creates the seeded template of one backend, and fresh copies of it."""

    def __init__(self, kind: str, workdir: Path):
        self.kind = kind
        self.workdir = workdir
        self.templates: dict[int, str] = {}
        self.created: list[str] = []

    def template(self, size: int) -> str:
        if size not in self.templates:
            from creditflow.migrations.runner import upgrade

            if self.kind == "postgresql":
                name = f"cfbench_tpl_{size}_{uuid.uuid4().hex[:8]}"
                _pg_exec(f'CREATE DATABASE "{name}"')
                self.created.append(name)
                url = _pg_url(name)
            else:
                url = f"sqlite:///{self.workdir / f'template_{size}.db'}"
            upgrade(url)
            started = time.perf_counter()
            seed(url, size)
            log(f"  seeded {size:,} subscriptions on {self.kind} in {time.perf_counter() - started:.1f}s")
            self.templates[size] = url
        return self.templates[size]

    def copy(self, size: int, label: str) -> str:
        template = self.template(size)
        if self.kind == "postgresql":
            from sqlalchemy.engine import make_url

            name = f"cfbench_{label}_{uuid.uuid4().hex[:8]}"
            _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template).database}"')
            self.created.append(name)
            return _pg_url(name)
        source = Path(template.removeprefix("sqlite:///"))
        target = self.workdir / f"{label}_{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(source, target)
        return f"sqlite:///{target}"

    def drop(self, url: str) -> None:
        if self.kind == "postgresql":
            from sqlalchemy.engine import make_url

            name = make_url(url).database
            _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.created.remove(name)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        for name in list(self.created):
            _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def seed(url: str, n: int) -> None:
    """N customers, each with an active Standard monthly subscription bought at ANCHOR and due
    at DUE: the first invoice, its line, attempt and sandbox charge, the first month's lot and
    its grant entry, the account totals. Rows go in with bulk inserts through the models'
    tables, so column defaults added by later migrations are filled in."""
    from sqlalchemy import insert

    from creditflow.kit.db import Database
    from creditflow.models import (CreditAccount, CreditEntry, CreditLot, Customer, Invoice, InvoiceLine,
                                   PaymentAttempt, SandboxCharge, Subscription)
    from creditflow.invoicing.models import Counter

    def rows(i: int) -> dict:
        k = f"{i:09d}"
        cus, sub, inv, pay, lot = f"cus_b{k}", f"sub_b{k}", f"inv_b{k}", f"pay_b{k}", f"lot_b{k}"
        grant_key = f"sub:{sub}:{ANCHOR.isoformat()}"
        return {
            "customers": dict(id=cus, external_id=f"bench-{k}", email=f"b{k}@example.com", name=None, country=None,
                              timezone="UTC", test_clock_id=None, balance=0, currency="usd",
                              payment_method="pm_card_ok", gateway_customer_id=f"sandbox_{cus}", created_at=ANCHOR),
            "credit_accounts": dict(customer_id=cus, granted=CREDITS_MILLI, spent=0, expired=0, held=0,
                                    available=CREDITS_MILLI, plan="standard"),
            "subscriptions": dict(
                id=sub, customer_id=cus, test_clock_id=None, plan="standard", term="monthly", term_price=PRICE,
                status="active", anchor=ANCHOR, term_start_offset=0, term_end_offset=1, credit_offset=0,
                current_term_start=ANCHOR, current_term_end=DUE, credit_period_start=ANCHOR, credit_period_end=DUE,
                cancel_at_period_end=False, retry_count=0, version=0, due_at=DUE, created_at=ANCHOR,
                updated_at=ANCHOR),
            "invoices": dict(
                id=inv, number=i + 1, customer_id=cus, subscription_id=sub, purpose="subscription_create",
                status="paid", currency="usd", subtotal=PRICE, tax=0, total=PRICE, balance_applied=0,
                amount_paid=PRICE, amount_refunded=0, period_start=ANCHOR, period_end=DUE,
                dedupe_key=f"subscribe:{sub}", details={"subscription": sub, "plan": "standard", "term": "monthly"},
                created_at=ANCHOR, paid_at=ANCHOR),
            "invoice_lines": dict(invoice_id=inv, position=0, kind="subscription",
                                  description="Standard plan, monthly", amount=PRICE, period_start=ANCHOR,
                                  period_end=DUE),
            "payment_attempts": dict(id=pay, invoice_id=inv, customer_id=cus, test_clock_id=None, amount=PRICE,
                                     currency="usd", status="succeeded", payment_method="pm_card_ok",
                                     gateway_reference=f"sbch_b{k}", created_at=ANCHOR, completed_at=ANCHOR),
            "sandbox_charges": dict(id=f"sbch_b{k}", idempotency_key=pay, customer_ref=cus,
                                    payment_method="pm_card_ok", amount=PRICE, currency="usd", status="succeeded",
                                    failure_code=None, amount_refunded=0, created_at=ANCHOR),
            "credit_lots": dict(id=lot, customer_id=cus, kind="subscription", granted=CREDITS_MILLI,
                                remaining=CREDITS_MILLI, expires_at=DUE, expired_at=None, subscription_id=sub,
                                invoice_id=None, grant_key=grant_key, reason=None, created_at=ANCHOR),
            "credit_entries": dict(id=f"cre_b{k}", customer_id=cus, lot_id=lot, kind="grant", amount=CREDITS_MILLI,
                                   reference=grant_key, created_at=ANCHOR),
        }

    order = [Customer, CreditAccount, Subscription, Invoice, InvoiceLine, PaymentAttempt, SandboxCharge,
             CreditLot, CreditEntry]
    database = Database(url)
    try:
        if database.is_postgres:
            _copy_rows(database, [model.__table__ for model in order], rows, n)
        else:
            chunk = 5000
            for start in range(0, n, chunk):
                batch = [rows(i) for i in range(start, min(n, start + chunk))]
                with database.engine.begin() as conn:
                    for model in order:
                        conn.execute(insert(model.__table__), [r[model.__tablename__] for r in batch])
        with database.engine.begin() as conn:
            conn.execute(insert(Counter.__table__), [{"name": "invoice", "value": n}])
        if database.is_postgres:
            with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        database.dispose()


def _copy_rows(database, tables: list, rows, n: int) -> None:
    """PostgreSQL: every table filled by one `COPY ... FROM STDIN` (psycopg's `cursor.copy()`)
    in one transaction, each value passed through its column's type as an insert would, and the
    columns' Python-side defaults filled in as the bulk insert does (the first version inserted
    5,000 rows per statement: ~40 s per 100k subscriptions, most of an hour for a million)."""
    from psycopg.types.json import Jsonb
    from sqlalchemy import JSON
    from sqlalchemy.types import TypeDecorator

    dialect = database.engine.dialect
    sample = rows(0)

    def defaults(table) -> dict:
        filled = {}
        for column in table.columns:
            default = column.default
            if column.name in sample[table.name] or default is None:
                continue
            if getattr(default, "is_scalar", False):
                filled[column.name] = default.arg
            elif getattr(default, "is_callable", False):
                filled[column.name] = default.arg(None)
        return filled

    def converter(column):
        if isinstance(column.type, JSON):
            return Jsonb
        if isinstance(column.type, TypeDecorator):
            return lambda value: column.type.process_bind_param(value, dialect)
        return None

    raw = database.engine.raw_connection()
    try:
        conn = raw.driver_connection
        plans = []
        for table in tables:
            filled = defaults(table)
            names = list(sample[table.name]) + list(filled)
            plans.append((table, filled, names, [converter(table.columns[name]) for name in names]))
        with conn.cursor() as cur:
            for start in range(0, n, 50_000):  # in chunks, so that rows are built once, not once per table
                batch = [rows(i) for i in range(start, min(n, start + 50_000))]
                for table, filled, names, convert in plans:
                    columns = ", ".join(f'"{name}"' for name in names)
                    with cur.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                        for r in batch:
                            row = {**filled, **r[table.name]}
                            copy.write_row([row[name] if fn is None or row[name] is None else fn(row[name])
                                            for name, fn in zip(names, convert)])
        conn.commit()
    finally:
        raw.close()


def verify(url: str, n: int, *, partial: bool = False, in_flight: int = 0) -> dict:
    """What a run left behind: every renewal done exactly once. After a run stopped at its time
    limit, what was finished must be whole (one invoice, one charge, one lot per renewal) and at
    most `in_flight` charges made but not yet settled (the engine opens a group of renewals and
    charges them before settling the group; the baseline one at a time)."""
    from sqlalchemy import func, select

    from creditflow.kit.db import Database
    from creditflow.models import CreditLot, Invoice, SandboxCharge, Subscription

    paid_renewals = (Invoice.purpose == "renewal", Invoice.status == "paid")
    database = Database(url)
    try:
        with database.transaction(readonly=True) as session:
            found = {
                "renewal_invoices_paid": session.scalar(select(func.count()).select_from(Invoice)
                                                        .where(*paid_renewals)),
                "renewed_subscriptions": session.scalar(select(func.count(func.distinct(Invoice.subscription_id)))
                                                        .where(*paid_renewals)),
                "sandbox_charges": session.scalar(select(func.count()).select_from(SandboxCharge)),
                "lots": session.scalar(select(func.count()).select_from(CreditLot)),
                "still_due": session.scalar(select(func.count()).select_from(Subscription).where(
                    Subscription.due_at <= DUE)),
                "on_next_term": session.scalar(select(func.count()).select_from(Subscription).where(
                    Subscription.current_term_end == NEXT, Subscription.due_at == NEXT)),
            }
            # The sandbox stamps charges with the wall clock: when the last renewal was charged.
            last_charge = session.scalar(select(func.max(SandboxCharge.created_at)))
    finally:
        database.dispose()
    done = found["renewal_invoices_paid"]
    if partial:
        ok = (found["renewed_subscriptions"] == done and found["lots"] == n + done
              and found["on_next_term"] == done and n + done <= found["sandbox_charges"] <= n + done + in_flight)
        return {"ok": ok, "found": found, "renewals_done": done, "last_charge_at": last_charge.timestamp()}
    expected = {"renewal_invoices_paid": n, "renewed_subscriptions": n, "sandbox_charges": 2 * n, "lots": 2 * n,
                "still_due": 0, "on_next_term": n}
    return {"ok": found == expected, "found": found, "renewals_done": done, "last_charge_at": last_charge.timestamp(),
            **({} if found == expected else {"expected": expected})}


# ------------------------------------------------------------------------------------------
# The raw-SQL baseline: the same writes per renewal, by hand, three transactions per renewal.
# ------------------------------------------------------------------------------------------

class Raw:
    """A driver connection with one `q()` for both backends (%s placeholders)."""

    def __init__(self, url: str):
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            import sqlite3

            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
                self.conn.execute(f"PRAGMA {pragma}")
        else:
            import psycopg
            from sqlalchemy.engine import make_url

            u = make_url(url)
            self.conn = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                                        dbname=u.database)
        self.cur = self.conn.cursor()

    def ts(self, dt: datetime):
        # SQLAlchemy's SQLite format, so that comparisons with seeded values hold.
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else dt

    def begin(self, write: bool = True) -> None:
        if self.sqlite:
            self.cur.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")

    def commit(self) -> None:
        if self.sqlite:
            self.cur.execute("COMMIT")
        else:
            self.conn.commit()

    def q(self, sql: str, params: tuple = ()):
        if self.sqlite:
            sql = sql.replace("%s", "?").replace(" FOR UPDATE SKIP LOCKED", "").replace(" FOR UPDATE", "")
            sql = sql.replace("true", "1").replace("false", "0")
        self.cur.execute(sql, params)
        return self.cur

    def close(self) -> None:
        self.conn.close()


def baseline_drain(url: str, owner: str, batch: int) -> int:
    db = Raw(url)
    now = DUE
    renewed = 0
    seq = iter(range(10**9))

    def new_id(prefix: str) -> str:  # unique across workers, as new_id() is
        return f"{prefix}_{owner}_{next(seq):09d}"

    try:
        while True:
            db.begin()  # claim a batch
            due = [r[0] for r in db.q(
                "SELECT id FROM subscriptions WHERE due_at <= %s AND test_clock_id IS NULL ORDER BY due_at "
                "LIMIT %s FOR UPDATE SKIP LOCKED", (db.ts(now), batch)).fetchall()]
            if due:
                marks = ",".join(["%s"] * len(due))
                db.q(f"UPDATE subscriptions SET due_at = %s, lease_owner = %s WHERE id IN ({marks})",
                     (db.ts(now + timedelta(minutes=5)), owner, *due))
            db.commit()
            if not due:
                return renewed
            for sub_id in due:
                _baseline_renewal(db, sub_id, owner, now, new_id)
                renewed += 1
    finally:
        db.close()


def _baseline_renewal(db: Raw, sub_id: str, owner: str, now: datetime, new_id) -> None:
    ts = db.ts
    # 1. Open the renewal: invoice with its number and line, the pending attempt.
    db.begin()
    sub = db.q("SELECT customer_id, anchor, lease_owner FROM subscriptions WHERE id = %s FOR UPDATE",
               (sub_id,)).fetchone()
    customer_id = sub[0]
    number = db.q("UPDATE counters SET value = value + 1 WHERE name = 'invoice' RETURNING value").fetchone()[0]
    invoice_id, attempt_id = new_id("inv"), new_id("pay")
    db.q("INSERT INTO invoices (id, number, customer_id, subscription_id, purpose, status, currency, subtotal, tax, "
         "total, balance_applied, amount_paid, amount_refunded, period_start, period_end, dedupe_key, details, "
         "created_at) VALUES (%s,%s,%s,%s,'renewal','open','usd',%s,0,%s,0,0,0,%s,%s,%s,%s,%s)",
         (invoice_id, number, customer_id, sub_id, PRICE, PRICE, ts(DUE), ts(NEXT),
          f"renewal:{sub_id}:{ANCHOR.isoformat()}:1",
          json.dumps({"subscription": sub_id, "plan": "standard", "term": "monthly", "term_start_offset": 1}),
          ts(now)))
    db.q("INSERT INTO invoice_lines (invoice_id, position, kind, description, amount, period_start, period_end) "
         "VALUES (%s,0,'subscription','Standard plan, monthly',%s,%s,%s)", (invoice_id, PRICE, ts(DUE), ts(NEXT)))
    customer = db.q("SELECT payment_method, balance FROM customers WHERE id = %s FOR UPDATE",
                    (customer_id,)).fetchone()
    db.q("INSERT INTO payment_attempts (id, invoice_id, customer_id, amount, currency, status, payment_method, "
         "created_at) VALUES (%s,%s,%s,%s,'usd','pending',%s,%s)",
         (attempt_id, invoice_id, customer_id, PRICE, customer[0], ts(now)))
    db.q("UPDATE subscriptions SET pending_invoice_id = %s, due_at = %s, updated_at = %s WHERE id = %s",
         (invoice_id, ts(now + timedelta(minutes=5)), ts(now), sub_id))
    db.commit()
    # 2. The sandbox gateway, one request: the charge for this idempotency key, or a new one.
    charge_id = new_id("sbch")
    db.begin()
    db.q("SELECT id, status FROM sandbox_charges WHERE idempotency_key = %s", (attempt_id,)).fetchone()
    db.q("INSERT INTO sandbox_charges (id, idempotency_key, customer_ref, payment_method, amount, currency, status, "
         "amount_refunded, created_at) VALUES (%s,%s,%s,%s,%s,'usd','succeeded',0,%s)",
         (charge_id, attempt_id, customer_id, customer[0], PRICE, ts(datetime.now(timezone.utc))))  # as the sandbox
    db.commit()
    # 3. Settle: attempt and invoice paid, the old lot expired, the new one granted, the next term.
    db.begin()
    db.q("SELECT status FROM payment_attempts WHERE id = %s FOR UPDATE", (attempt_id,)).fetchone()
    db.q("SELECT status FROM invoices WHERE id = %s FOR UPDATE", (invoice_id,)).fetchone()
    db.q("UPDATE payment_attempts SET status = 'succeeded', gateway_reference = %s, completed_at = %s WHERE id = %s",
         (charge_id, ts(now), attempt_id))
    db.q("UPDATE invoices SET status = 'paid', amount_paid = %s, paid_at = %s WHERE id = %s",
         (PRICE, ts(now), invoice_id))
    _event(db, new_id, "invoice.paid", customer_id, {"invoice": invoice_id, "number": number, "total": PRICE},
           now)
    db.q("SELECT status FROM subscriptions WHERE id = %s FOR UPDATE", (sub_id,)).fetchone()
    lots = db.q("SELECT id, remaining FROM credit_lots WHERE subscription_id = %s AND kind = 'subscription' "
                "AND expired_at IS NULL FOR UPDATE", (sub_id,)).fetchall()
    db.q("SELECT available FROM credit_accounts WHERE customer_id = %s FOR UPDATE", (customer_id,)).fetchone()
    expired = 0
    for lot_id, remaining in lots:
        db.q("UPDATE credit_lots SET remaining = 0, expired_at = %s WHERE id = %s", (ts(now), lot_id))
        if remaining:
            db.q("INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, created_at) "
                 "VALUES (%s,%s,%s,'expire',%s,%s)", (new_id("cre"), customer_id, lot_id, remaining, ts(now)))
            _event(db, new_id, "credits.expired", customer_id, {"lot": lot_id, "kind": "subscription"}, now)
            expired += remaining
    lot_id, grant_key = new_id("lot"), f"sub:{sub_id}:{DUE.isoformat()}"
    db.q("INSERT INTO credit_lots (id, customer_id, kind, granted, remaining, expires_at, subscription_id, grant_key, "
         "created_at) VALUES (%s,%s,'subscription',%s,%s,%s,%s,%s,%s)",
         (lot_id, customer_id, CREDITS_MILLI, CREDITS_MILLI, ts(NEXT), sub_id, grant_key, ts(now)))
    db.q("INSERT INTO credit_entries (id, customer_id, lot_id, kind, amount, reference, created_at) "
         "VALUES (%s,%s,%s,'grant',%s,%s,%s)", (new_id("cre"), customer_id, lot_id, CREDITS_MILLI, grant_key, ts(now)))
    db.q("UPDATE credit_accounts SET granted = granted + %s, expired = expired + %s, "
         "available = available - %s + %s WHERE customer_id = %s",
         (CREDITS_MILLI, expired, expired, CREDITS_MILLI, customer_id))
    _event(db, new_id, "credits.granted", customer_id, {"lot": lot_id, "kind": "subscription"}, now)
    db.q("UPDATE subscriptions SET status = 'active', term_price = %s, term_start_offset = 1, term_end_offset = 2, "
         "credit_offset = 1, current_term_start = %s, current_term_end = %s, credit_period_start = %s, "
         "credit_period_end = %s, pending_invoice_id = NULL, version = version + 1, updated_at = %s, due_at = %s, "
         "lease_owner = NULL WHERE id = %s",
         (PRICE, ts(DUE), ts(NEXT), ts(DUE), ts(NEXT), ts(now), ts(NEXT), sub_id))
    _event(db, new_id, "subscription.renewed", customer_id, {"subscription": sub_id, "invoice": invoice_id}, now)
    db.commit()


def _event(db: Raw, new_id, type_: str, customer_id: str, data: dict, now: datetime) -> None:
    db.q("INSERT INTO events (id, type, customer_id, data, created_at, dispatched) VALUES (%s,%s,%s,%s,%s,false)",
         (new_id("evt"), type_, customer_id, json.dumps(data), db.ts(now)))


# ------------------------------------------------------------------------------------------
# Worker processes: started once, imported and idle, given one run at a time.
# ------------------------------------------------------------------------------------------

def worker_main() -> None:
    """`renewals.py _worker`: read JSON commands on stdin, answer JSON lines on stdout."""
    from creditflow.wiring import build_context
    from creditflow.kit.clock import FixedClock
    from creditflow.kit.db import Database
    from creditflow.worker.runner import tick

    def reply(obj) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"ready": True})
    prepared = None
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            return
        if command["cmd"] == "prepare":
            prepared = command
            if command["kind"] == "engine":
                ctx = build_context(Database(command["url"]), clock=FixedClock(DUE))
                with ctx.db.transaction(readonly=True) as session:  # connect before the start line
                    session.connection()
                prepared["ctx"] = ctx
            reply({"prepared": True})
        elif command["cmd"] == "go":
            job = prepared

            def work() -> None:
                if job["kind"] == "engine":
                    tick(job["ctx"], DUE, owner=job["owner"], batch=job["batch"])
                    job["ctx"].db.dispose()
                else:
                    baseline_drain(job["url"], job["owner"], job["batch"])

            started, cpu = time.time(), time.process_time()
            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            thread.join(command.get("max_seconds"))
            if thread.is_alive():  # the time limit: stop dead, as a killed worker would
                reply({"start": started, "end": time.time(), "cpu": time.process_time() - cpu, "partial": True})
                os._exit(0)
            reply({"start": started, "end": time.time(), "cpu": time.process_time() - cpu, "partial": False})
            prepared = None


class Pool:
    """Worker processes, imported and idle before a run starts; one that was stopped at a time
    limit is replaced before the next run."""

    def __init__(self, size: int):
        self.procs = [self._spawn() for _ in range(size)]
        self.cpu_seconds = 0.0  # the last run's, all its workers together

    def _spawn(self):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, __file__, "_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, env=env)
        self._read(proc)
        return proc

    def _read(self, proc) -> dict:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {proc.pid} died (exit code {proc.wait()})")
        return json.loads(line)

    def _send(self, proc, obj) -> None:
        proc.stdin.write(json.dumps(obj) + "\n")
        proc.stdin.flush()

    def run(self, kind: str, url: str, workers: int, batch: int,
            max_seconds: float | None) -> tuple[float, float, bool]:
        """When the first worker started, seconds from then to the last worker's end, and whether
        the time limit stopped it."""
        self.procs = [proc if proc.poll() is None else self._spawn() for proc in self.procs]
        used = self.procs[:workers]
        for n, proc in enumerate(used):
            self._send(proc, {"cmd": "prepare", "kind": kind, "url": url, "owner": f"w{n}", "batch": batch})
        for proc in used:
            self._read(proc)
        for proc in used:
            self._send(proc, {"cmd": "go", "max_seconds": max_seconds})
        spans = [self._read(proc) for proc in used]
        for proc, span in zip(used, spans):
            if span["partial"]:
                proc.wait(timeout=30)
        start = min(s["start"] for s in spans)
        self.cpu_seconds = sum(s["cpu"] for s in spans)
        return start, max(s["end"] for s in spans) - start, any(s["partial"] for s in spans)

    def close(self) -> None:
        for proc in self.procs:
            try:
                if proc.poll() is None:
                    self._send(proc, {"cmd": "quit"})
                proc.wait(timeout=10)
            except Exception:  # noqa: BLE001 - best effort
                proc.kill()


# ------------------------------------------------------------------------------------------
# The run and its summary.
# ------------------------------------------------------------------------------------------

@dataclass
class Measure:
    seconds: float
    renewals: int
    workers: int

    def as_dict(self) -> dict:
        rps = self.renewals / self.seconds if self.seconds else 0.0
        # Nothing finished within a time limit (a busy machine): a rate of 0, no cost per renewal.
        cost = round(1000 * self.seconds * self.workers / self.renewals, 3) if self.renewals else None
        return {"seconds": round(self.seconds, 3), "renewals_per_second": round(rps, 1),
                "renewals_per_second_per_worker": round(rps / self.workers, 1), "cost_ms_per_renewal": cost}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(sizes: list[int], modes: list[str], batch: int, out: Path, max_seconds: float | None = None,
        drain_up_to: int = 0) -> dict:
    started = datetime.now(timezone.utc)
    workdir = Path(tempfile.mkdtemp(prefix="cfbench_"))
    backends = {kind: Backend(kind, workdir) for kind in {MODES[m][0] for m in modes}}
    pool = Pool(max(MODES[m][1] for m in modes))
    runs = []
    try:
        for size in sizes:
            for mode in modes:
                kind, workers = MODES[mode]
                backend = backends[kind]
                result = {"size": size, "mode": mode, "backend": kind, "workers": workers}
                for contestant in ("engine", "baseline"):
                    url = backend.copy(size, f"{mode.replace('-', '')}_{contestant}")
                    limit = max_seconds if size > drain_up_to else None
                    load_before = _load_average()
                    began, seconds, partial = pool.run(contestant, url, workers, batch, limit)
                    checked = verify(url, size, partial=partial, in_flight=workers * _group(contestant))
                    done = checked["renewals_done"]
                    # Until the last charge: the renewals alone, without the rest of the worker's
                    # round (webhook fan-out, credit expiries) that follows them.
                    charged_by = round(checked.pop("last_charge_at") - began, 3)
                    result[contestant] = {**Measure(seconds, done, workers).as_dict(), "renewals": done,
                                          # The workers' own CPU: moves less than wall time with
                                          # the machine's other load (the database's is not in it).
                                          "worker_cpu_ms_per_renewal": (round(1000 * pool.cpu_seconds / done, 3)
                                                                        if done else None),
                                          "drained": not partial, "seconds_to_last_charge": charged_by,
                                          # Other work on the machine skews everything: say how busy it was.
                                          "load_average_1min": {"before": load_before, "after": _load_average()},
                                          "verified": checked}
                    backend.drop(url)
                    log(f"{mode:>10} N={size:>7,} {contestant:>8}: {done / max(seconds, 1e-9):8.1f} renewals/s "
                        f"({done:,} in {seconds:.2f}s{', time limit' if partial else ''}; last charge at "
                        f"{charged_by:.2f}s) verified={checked['ok']}")
                baseline_rate = result["baseline"]["renewals_per_second"]
                result["ratio_to_baseline"] = (round(result["engine"]["renewals_per_second"] / baseline_rate, 3)
                                               if baseline_rate else None)
                runs.append(result)
    finally:
        pool.close()
        for backend in backends.values():
            backend.close()
        shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "benchmark": "renewals",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "machine": machine(),
        "settings": {"sizes": sizes, "modes": modes, "batch": batch, "max_seconds": max_seconds,
                     "drained_up_to": drain_up_to,
                     "gateway": "sandbox (no delay)",
                     "plan": "standard monthly", "due_at": DUE.isoformat()},
        "runs": runs,
        "summary": summarise(runs, sizes),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def summarise(runs: list[dict], sizes: list[int]) -> dict:
    by = {(r["mode"], r["size"]): r for r in runs}
    summary: dict = {"renewals_per_second": {}, "ratio_to_baseline": {}, "two_workers_vs_one": {},
                     "cost_ms_per_renewal": {}, "cost_growth": {}, "worker_cpu_ms_per_renewal": {}}
    for (mode, size), r in by.items():
        summary["worker_cpu_ms_per_renewal"].setdefault(mode, {})[str(size)] = r["engine"]["worker_cpu_ms_per_renewal"]
        summary["renewals_per_second"].setdefault(mode, {})[str(size)] = r["engine"]["renewals_per_second"]
        summary["ratio_to_baseline"].setdefault(mode, {})[str(size)] = r["ratio_to_baseline"]
        summary["cost_ms_per_renewal"].setdefault(mode, {})[str(size)] = r["engine"]["cost_ms_per_renewal"]
    for size in sizes:
        one, two = by.get(("postgres-1", size)), by.get(("postgres-2", size))
        if one and two:
            summary["two_workers_vs_one"][str(size)] = {
                contestant: round(two[contestant]["renewals_per_second"] / one[contestant]["renewals_per_second"], 3)
                for contestant in ("engine", "baseline") if one[contestant]["renewals_per_second"]}
    smallest, largest = min(sizes), max(sizes)
    if smallest != largest:
        for mode in summary["cost_ms_per_renewal"]:
            costs = summary["cost_ms_per_renewal"][mode]
            if costs.get(str(smallest)) and costs.get(str(largest)):
                summary["cost_growth"][mode] = {"from": smallest, "to": largest,
                                                "ratio": round(costs[str(largest)] / costs[str(smallest)], 3)}
        for mode, cpu in summary["worker_cpu_ms_per_renewal"].items():
            if cpu.get(str(smallest)) and cpu.get(str(largest)):
                summary.setdefault("worker_cpu_growth", {})[mode] = {
                    "from": smallest, "to": largest, "ratio": round(cpu[str(largest)] / cpu[str(smallest)], 3)}
    summary["goals"] = goals(runs, summary)
    summary["all_verified"] = all(r[c]["verified"]["ok"] for r in runs for c in ("engine", "baseline"))
    return summary


def goals(runs: list[dict], summary: dict) -> dict:
    per_worker = [r["engine"]["renewals_per_second_per_worker"] for r in runs if r["backend"] == "postgresql"]
    scaling = [v["engine"] for v in summary["two_workers_vs_one"].values()]
    growth = [v["ratio"] for v in summary["cost_growth"].values()]

    def check(values, ok) -> dict:
        return {"values": values, "met": bool(values) and all(ok(v) for v in values)} if values else \
            {"values": [], "met": None}

    return {
        "renewals_per_second_per_worker_postgres_at_least_100": check(
            per_worker, lambda v: v >= GOALS["min_renewals_per_second_per_worker_postgres"]),
        "two_workers_at_least_1.6x_one": check(scaling, lambda v: v >= GOALS["min_two_workers_vs_one"]),
        "cost_per_renewal_within_30pct_across_sizes": check(growth, lambda v: v <= GOALS["max_cost_growth"]),
    }


def _group(contestant: str) -> int:
    """Renewals a worker charges before settling them: the engine's group, the baseline's one."""
    if contestant == "baseline":
        return 1
    from creditflow.purchase.renewal import GROUP

    return GROUP


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        from sqlalchemy import create_engine

        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            info["postgresql"] = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
    except Exception:  # noqa: BLE001 - informative only
        info["postgresql"] = None
    import sqlite3

    info["sqlite"] = sqlite3.sqlite_version
    try:
        info["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_worker"]:
        worker_main()
        return 0
    # A terminated run still drops its databases and temporary files (the `finally` in run()).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated N (default 10000,100000)")
    parser.add_argument("--tiny", action="store_true", help="N=50 on every mode (a smoke run)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"among {', '.join(MODES)}")
    parser.add_argument("--batch", type=int, default=100, help="subscriptions claimed per round (default 100)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop each contestant after this long and measure what it finished (a steady-state "
                             "rate over a queue of N) instead of draining all N; sizes up to --drain-up-to are "
                             "always drained")
    parser.add_argument("--drain-up-to", type=int, default=0, help="sizes always drained whatever --max-seconds")
    args = parser.parse_args(argv)
    sizes = [50] if args.tiny else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not sizes or min(sizes) < 1:
        parser.error(f"unknown mode(s) {unknown}" if unknown else "sizes must be positive")
    report = run(sizes, modes, args.batch, args.out, args.max_seconds, args.drain_up_to)
    log(json.dumps(report["summary"], indent=2))
    log(f"results written to {args.out}")
    return 0 if report["summary"]["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
