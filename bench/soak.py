#!/usr/bin/env python
"""Soak: bounded mixed traffic through a real server, with the invariants checked throughout.

    .venv/bin/python bench/soak.py --seconds 300              # SQLite, five minutes
    .venv/bin/python bench/soak.py --db postgres --seconds 600
    .venv/bin/python bench/soak.py --tiny                     # a few seconds; the test suite runs it
    .venv/bin/python bench/soak.py --database-url URL         # on a database of yours (left in place)

One `creditflow serve` process (sandbox gateway, test clocks on, its worker thread running) on a
fresh database, and a flaky webhook receiver (a thread) that answers 500 to the first delivery
of some events. Customers are made through the API, each on its own test clock, with a card, a
monthly Basic subscription and promo credits. Then `--threads` clients, each with its own
seeded random stream, send for `--seconds` (one of each kind first, then as `MIX` weighs them):

- spends (half of all requests) and holds, settled or released, to any customer, so that
  clients meet on the same customer's credits;
- to their own customers: test-clock advances of a month (a renewal: charge, new month of
  credits, leftovers expired), immediate plan changes (Basic to Standard and back), top-ups,
  and refunds of earlier top-ups (support key).

Checked every `--check-every` seconds while the traffic runs: `creditflow ledger check` passes,
no invoice has more than one successful charge, and no answer so far was a 5xx or a broken
connection. At the end, once the traffic stopped: the same, plus every payment attempt and
refund settled, each paid invoice's charge equal to what it records and no other invoice
charged, credits granted only for paid invoices, and every event delivered to the receiver
(retried after the failures it answered), signed with the endpoint's secret.

Prints what it did and each invariant; writes bench/results/soak.json (see --out); exits 1 if
an invariant failed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "soak.json"
PG_ADMIN_URL = os.environ.get("CREDITFLOW_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CLI = [sys.executable, "-m", "creditflow.cli"]
SERVER_KEY, SUPPORT_KEY = "sk_soak_server_0123456789", "sk_soak_support_0123456789"
START = "2026-01-05T09:00:00Z"
# Relative weights of what a client does next.
MIX = {"spend": 50, "hold": 15, "renewal": 8, "plan_change": 8, "top_up": 10, "refund": 5, "read": 4}


# ------------------------------------------------------------------------------------------
# The flaky webhook receiver.
# ------------------------------------------------------------------------------------------

class Receiver:
    """Answers 500 to the first delivery of one event in `fail_one_in` (by a hash of its id,
    so the choice doesn't depend on timing), 200 to every other; keeps what it acknowledged.

    A customer's later events wait while one of theirs is retried (10 s later, then 20, ...),
    so it refuses at most one event per customer in `REFUSAL_GAP` seconds: the last refusal is
    then delivered about 10 s after the traffic stops, however long the soak ran."""

    REFUSAL_GAP = 30.0

    def __init__(self, fail_one_in: int):
        self.fail_one_in = fail_one_in
        self.last_refusal: dict[str | None, float] = {}
        self.secret: str | None = None
        self.lock = threading.Lock()
        self.acknowledged: set[str] = set()
        self.refused: set[str] = set()
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = json.loads(body)
                event_id, customer = event["id"], event.get("customer")
                signed = receiver.verify(self.headers.get("Creditflow-Signature", ""), body)
                with receiver.lock:
                    if not signed:
                        receiver.bad_signatures += 1
                    fail = (int(hashlib.sha256(event_id.encode()).hexdigest(), 16) % receiver.fail_one_in == 0
                            and event_id not in receiver.refused and event_id not in receiver.acknowledged
                            and time.monotonic() - receiver.last_refusal.get(customer, -1e9) > receiver.REFUSAL_GAP)
                    if fail:
                        receiver.refused.add(event_id)
                        receiver.last_refusal[customer] = time.monotonic()
                    else:
                        receiver.acknowledged.add(event_id)
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, header: str, body: bytes) -> bool:
        try:
            parts = dict(item.split("=", 1) for item in header.split(","))
            expected = hmac.new(self.secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, parts["v1"])
        except (KeyError, ValueError, AttributeError):
            return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------
# The server and the clients.
# ------------------------------------------------------------------------------------------

def start_server(db_url: str, workdir: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CREDITFLOW_DATABASE_URL": db_url, "CREDITFLOW_TEST_CLOCKS": "1",
           "CREDITFLOW_SECRET_KEY": "soak", "CREDITFLOW_RATE_LIMIT": "1000000",
           "CREDITFLOW_BOOTSTRAP_KEYS": f"{SERVER_KEY}:server,{SUPPORT_KEY}:support"}
    for name in ("CREDITFLOW_FAULT_POINT", "CREDITFLOW_GATEWAY"):
        env.pop(name, None)
    process = subprocess.Popen(CLI + ["serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                                      "--log-level", "warning"], cwd=workdir, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Tally:
    """Every answer by operation and status, and every one a client should never see."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers: dict[str, Counter] = {}
        self.bad: list[str] = []

    def record(self, op: str, response: httpx.Response | None, error: Exception | None = None) -> None:
        with self.lock:
            status = response.status_code if response is not None else "no answer"
            self.answers.setdefault(op, Counter())[status] += 1
            if response is None:
                self.bad.append(f"{op}: {error!r}")
            elif response.status_code >= 500:
                self.bad.append(f"{op}: {response.status_code} {response.text[:300]}")


class Client:
    def __init__(self, url: str, tally: Tally):
        self.http = httpx.Client(base_url=url, timeout=120)
        self.tally = tally

    def call(self, op: str, method: str, path: str, body: dict | None = None, key: str = SERVER_KEY):
        try:
            response = self.http.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
        except httpx.TransportError as exc:
            self.tally.record(op, None, exc)
            return None
        self.tally.record(op, response)
        return response

    def ok(self, op: str, method: str, path: str, body: dict | None = None, key: str = SERVER_KEY) -> dict:
        response = self.call(op, method, path, body, key)
        if response is None or response.status_code not in (200, 201):
            raise RuntimeError(f"{op} {path}: {response.status_code if response else 'no answer'} "
                               f"{response.text if response else ''}")
        return response.json()


class Customer:
    def __init__(self, id: str, clock: str, subscription: str):
        self.id, self.clock, self.subscription = id, clock, subscription
        self.month = 0
        self.plan = "basic"
        self.top_up_invoices: list[str] = []
        self.lock = threading.Lock()  # one clock advance, change or purchase of a customer at a time


def make_customers(client: Client, count: int, run: str) -> list[Customer]:
    made = []
    for n in range(count):
        clock = client.ok("setup", "POST", "/v1/test_clocks", {"frozen_time": START})["id"]
        customer = client.ok("setup", "POST", "/v1/customers", {
            "external_id": f"soak-{run}-{n}", "email": f"soak{n}@example.com", "test_clock": clock})["id"]
        client.ok("setup", "POST", f"/v1/customers/{customer}/payment_method", {"token": "pm_card_ok"})
        sub = client.ok("setup", "POST", "/v1/subscriptions", {"customer": customer, "plan": "basic",
                                                               "term": "monthly"})["id"]
        client.ok("setup", "POST", f"/v1/customers/{customer}/credits/grants",
                  {"amount": "1000000", "reason": "soak"}, key=SUPPORT_KEY)
        made.append(Customer(customer, clock, sub))
    return made


def month_after(month: int) -> str:
    year, index = 2026 + month // 12, month % 12
    return f"{year}-{index + 1:02d}-05T09:00:00Z"


def change_plan(client: Client, customer: Customer) -> None:
    """Basic to Standard at once (an upgrade, charged prorated); Standard back to Basic at the
    end of the term (a downgrade is scheduled); a scheduled downgrade cancelled."""
    sub = customer.subscription
    if customer.plan == "basic":
        answer = client.call("plan_change", "POST", f"/v1/subscriptions/{sub}/change",
                             {"plan": "standard", "term": "monthly", "timing": "immediate"})
        next_plan = "standard"
    elif customer.plan == "standard":
        answer = client.call("plan_change", "POST", f"/v1/subscriptions/{sub}/change",
                             {"plan": "basic", "term": "monthly", "timing": "end_of_period"})
        next_plan = "downgrading"
    else:
        answer = client.call("plan_change", "DELETE", f"/v1/subscriptions/{sub}/scheduled_change")
        next_plan = "standard"
    if answer is not None and answer.status_code == 200:
        customer.plan = next_plan


def client_loop(client: Client, rng: random.Random, customers: list[Customer], own: list[Customer],
                deadline: float, name: str) -> None:
    ops, weights = zip(*MIX.items())
    first = list(ops)  # every kind once, in a random order, then as the mix says: even a short run has them all
    rng.shuffle(first)
    n = 0
    while time.monotonic() < deadline:
        n += 1
        op = first.pop() if first else rng.choices(ops, weights)[0]
        reference = f"{name}-{n}"
        if op in ("spend", "hold", "read"):
            customer = rng.choice(customers)
            if op == "spend":
                client.call(op, "POST", f"/v1/customers/{customer.id}/credits/spend",
                            {"amount": rng.choice(("0.5", "1", "3")), "feature": "standard_models",
                             "reference": reference})
            elif op == "read":
                client.call(op, "GET", f"/v1/customers/{customer.id}/credits")
            else:
                held = client.call(op, "POST", f"/v1/customers/{customer.id}/credits/holds",
                                   {"amount": "4", "feature": "standard_models", "reference": reference})
                if held is not None and held.status_code == 201:
                    hold = held.json()["id"]
                    if rng.random() < 0.7:
                        client.call("hold_settle", "POST", f"/v1/holds/{hold}/settle", {"amount": "2.5"})
                    else:
                        client.call("hold_release", "POST", f"/v1/holds/{hold}/release")
            continue
        customer = rng.choice(own)
        with customer.lock:
            if op == "renewal":
                customer.month += 1
                moved = client.call(op, "POST", f"/v1/test_clocks/{customer.clock}/advance",
                                    {"frozen_time": month_after(customer.month)})
                if moved is not None and moved.status_code == 200 and customer.plan == "downgrading":
                    customer.plan = "basic"  # the scheduled downgrade took effect at the renewal
            elif op == "plan_change":
                change_plan(client, customer)
            elif op == "top_up":
                bought = client.call(op, "POST", f"/v1/customers/{customer.id}/top_ups",
                                     {"bundle": "credits_1000", "reference": reference})
                if bought is not None and bought.status_code == 201:
                    customer.top_up_invoices.append(bought.json()["invoice"])
            elif op == "refund" and customer.top_up_invoices:
                invoice = customer.top_up_invoices.pop(0)
                body = {"invoice": invoice, "reason": "soak"}
                if rng.random() < 0.5:
                    body["amount"] = 300  # a part; else the whole, which takes the bundle's credits back
                client.call(op, "POST", "/v1/refunds", body, key=SUPPORT_KEY)


# ------------------------------------------------------------------------------------------
# The invariants.
# ------------------------------------------------------------------------------------------

def ledger_check(db_url: str, workdir: str) -> tuple[bool, str]:
    done = subprocess.run(CLI + ["ledger", "check", "--database-url", db_url], cwd=workdir, capture_output=True,
                          text=True, timeout=300)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, lines[-1] if lines else ""


CHARGES = ("SELECT a.invoice_id, COUNT(*), SUM(c.amount) FROM sandbox_charges c JOIN payment_attempts a"
           " ON a.id = c.idempotency_key WHERE c.status = 'succeeded' GROUP BY a.invoice_id")


def check_during(db_url: str, workdir: str, tally: Tally) -> dict:
    """What holds at any instant, even mid-purchase."""
    ledger_ok, ledger_line = ledger_check(db_url, workdir)
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            doubled = [row[0] for row in conn.execute(text(CHARGES)) if row[1] > 1]
    finally:
        engine.dispose()
    with tally.lock:
        bad = list(tally.bad)
    return {
        "ledger_check": {"ok": ledger_ok, "detail": ledger_line},
        "at_most_one_charge_per_invoice": {"ok": not doubled, "detail": f"charged twice: {doubled[:5]}"},
        "no_5xx_or_broken_connection": {"ok": not bad, "detail": f"{len(bad)} bad answers: {bad[:5]}"},
    }


def check_at_end(db_url: str, workdir: str, tally: Tally, receiver: Receiver, endpoint_after_seq: int) -> dict:
    checks = check_during(db_url, workdir, tally)
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            unsettled = conn.execute(text("SELECT COUNT(*) FROM payment_attempts WHERE status IN ('pending', 'unknown')"
                                          )).scalar_one()
            pending_refunds = conn.execute(text("SELECT COUNT(*) FROM refunds WHERE status = 'pending'")).scalar_one()
            charged = {row[0]: row[2] for row in conn.execute(text(CHARGES))}
            wrong = []
            for invoice, status, amount_paid in conn.execute(text("SELECT id, status, amount_paid FROM invoices")):
                paid = status in ("paid", "refunded", "partially_refunded")
                if charged.get(invoice, 0) != (amount_paid if paid else 0):
                    wrong.append((invoice, status, amount_paid, charged.get(invoice)))
            unpaid_grants = conn.execute(text(
                "SELECT COUNT(*) FROM credit_lots l JOIN invoices i ON i.id = l.invoice_id"
                " WHERE i.status NOT IN ('paid', 'refunded', 'partially_refunded')")).scalar_one()
            events = set(conn.scalars(text("SELECT id FROM events WHERE seq > :after"), {"after": endpoint_after_seq}))
            deliveries = dict(conn.execute(text("SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status")).all())
    finally:
        engine.dispose()
    with receiver.lock:
        missing = events - receiver.acknowledged
        bad_signatures = receiver.bad_signatures
    checks.update({
        "payments_and_refunds_settled": {"ok": unsettled == 0 and pending_refunds == 0,
                                         "detail": f"{unsettled} attempts, {pending_refunds} refunds unsettled"},
        "paid_equals_charged": {"ok": not wrong, "detail": f"{len(wrong)} invoices differ: {wrong[:5]}"},
        "credits_only_for_paid_invoices": {"ok": unpaid_grants == 0, "detail": f"{unpaid_grants} lots of unpaid invoices"},
        "webhooks_all_delivered": {
            "ok": not missing and set(deliveries) <= {"delivered"} and bad_signatures == 0,
            "detail": f"{len(events)} events, {len(missing)} not acknowledged, deliveries {deliveries}, "
                      f"{len(receiver.refused)} refused once on purpose, {bad_signatures} bad signatures",
            "events": len(events)},
    })
    return checks


def wait_for_deliveries(db_url: str, receiver: Receiver, after_seq: int, seconds: float) -> float:
    """Wait until every event is acknowledged and nothing is pending, for as long as deliveries
    keep coming (at most `seconds`; a refused one is retried 10 s later, so 45 s without any
    progress means they stopped); returns how long it took."""
    started = last_progress = time.monotonic()
    acknowledged = -1
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        while time.monotonic() - started < seconds and time.monotonic() - last_progress < 45:
            with engine.connect() as conn:
                events = set(conn.scalars(text("SELECT id FROM events WHERE seq > :after"), {"after": after_seq}))
                pending = conn.execute(text("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'"
                                            )).scalar_one()
            with receiver.lock:
                if pending == 0 and events <= receiver.acknowledged:
                    break
                if len(receiver.acknowledged) > acknowledged:
                    acknowledged, last_progress = len(receiver.acknowledged), time.monotonic()
            time.sleep(0.5)
    finally:
        engine.dispose()
    return round(time.monotonic() - started, 1)


# ------------------------------------------------------------------------------------------

def postgres_database() -> tuple[str, callable]:
    name = f"cfbench_soak_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False), drop


def soak(db_url: str, workdir: str, args) -> dict:
    receiver = Receiver(args.fail_one_in)
    server, url = start_server(db_url, workdir)
    tally = Tally()
    during: list[dict] = []
    try:
        setup = Client(url, tally)
        endpoint = setup.ok("setup", "POST", "/v1/webhook_endpoints", {"url": receiver.url})
        receiver.secret = endpoint["secret"]
        engine = create_engine(db_url, poolclass=NullPool)
        with engine.connect() as conn:
            after_seq = conn.execute(text("SELECT after_seq FROM webhook_endpoints WHERE id = :id"),
                                     {"id": endpoint["id"]}).scalar_one()
        engine.dispose()
        run = uuid.uuid4().hex[:6]
        customers = make_customers(setup, args.customers, run)
        print(f"soak ({args.db}): {len(customers)} customers, {args.threads} clients, {args.seconds} s", flush=True)

        started = time.monotonic()
        deadline = started + args.seconds
        threads = []
        for i in range(args.threads):
            own = customers[i::args.threads] or customers
            thread = threading.Thread(target=client_loop, daemon=True, args=(
                Client(url, tally), random.Random(args.seed * 1000 + i), customers, own, deadline, f"{run}-c{i}"))
            thread.start()
            threads.append(thread)
        next_check = started + args.check_every
        while any(thread.is_alive() for thread in threads):
            if time.monotonic() >= next_check and time.monotonic() < deadline - 1:
                at = round(time.monotonic() - started, 1)
                checks = check_during(db_url, workdir, tally)
                during.append({"at_s": at, "checks": checks})
                print(f"  {during[-1]['at_s']:>6} s: " + ", ".join(
                    f"{name} {'OK' if c['ok'] else 'FAILED'}" for name, c in checks.items()), flush=True)
                next_check = time.monotonic() + args.check_every
            time.sleep(0.2)
        traffic_seconds = round(time.monotonic() - started, 1)
        waited = wait_for_deliveries(db_url, receiver, after_seq, args.drain_seconds)
        final = check_at_end(db_url, workdir, tally, receiver, after_seq)
    finally:
        stop(server)
        receiver.close()
    requests = sum(sum(c.values()) for op, c in tally.answers.items() if op != "setup")
    failed_during = sorted({name for d in during for name, c in d["checks"].items() if not c["ok"]})
    return {
        "benchmark": "soak", "database": args.db, "seconds": args.seconds, "traffic_seconds": traffic_seconds,
        "threads": args.threads, "customers": args.customers, "seed": args.seed,
        "requests": requests, "requests_per_second": round(requests / traffic_seconds, 1) if traffic_seconds else None,
        "answers": {op: {str(status): n for status, n in sorted(c.items(), key=str)} for op, c in
                    sorted(tally.answers.items())},
        "webhooks": {"events": final["webhooks_all_delivered"]["events"], "refused_once_on_purpose": len(receiver.refused),
                     "acknowledged": len(receiver.acknowledged), "seconds_to_deliver_all_after_traffic": waited},
        "checks_during": during, "invariants_at_end": final,
        "ok": not failed_during and all(c["ok"] for c in final.values()), "failed_during": failed_during,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url", help="a database to use (migrated at start if need be) and leave in place")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the traffic runs")
    parser.add_argument("--threads", type=int, default=6, help="client threads")
    parser.add_argument("--customers", type=int, default=12)
    parser.add_argument("--check-every", type=float, default=20.0, help="seconds between checks during the traffic")
    parser.add_argument("--fail-one-in", type=int, default=5, help="the receiver refuses the first delivery of "
                                                                   "one event in N")
    parser.add_argument("--drain-seconds", type=float, default=900.0,
                        help="at most how long to wait for the last webhook deliveries after the traffic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="a few seconds: what the test suite runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.tiny:
        args.seconds, args.threads, args.customers, args.check_every, args.fail_one_in = 3.0, 3, 2, 1.5, 3
    if args.database_url:
        args.db = make_url(args.database_url).get_backend_name().replace("postgresql", "postgres")

    with tempfile.TemporaryDirectory() as tmp:
        drop = None
        if args.database_url:
            db_url = args.database_url
        elif args.db == "postgres":
            db_url, drop = postgres_database()
        else:
            db_url = f"sqlite:///{tmp}/soak.db"
        try:
            result = soak(db_url, tmp, args)
        finally:
            if drop:
                drop()

    result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                         "load_average_1m_at_end": round(os.getloadavg()[0], 2)}
    print(f"{result['requests']} requests in {result['traffic_seconds']} s ({result['requests_per_second']}/s):")
    for op, answers in result["answers"].items():
        print(f"  {op:<13} " + ", ".join(f"{status}: {n}" for status, n in answers.items()))
    print(f"webhooks: {result['webhooks']['acknowledged']} events acknowledged, "
          f"{result['webhooks']['refused_once_on_purpose']} refused once on purpose, all delivered "
          f"{result['webhooks']['seconds_to_deliver_all_after_traffic']} s after the traffic")
    print(f"checked {len(result['checks_during'])} times during the traffic"
          + (f"; FAILED: {', '.join(result['failed_during'])}" if result["failed_during"] else ", all OK"))
    print("at the end:")
    for name, check in result["invariants_at_end"].items():
        print(f"  {'OK    ' if check['ok'] else 'FAILED'} {name}: {check['detail']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"soak {'passed' if result['ok'] else 'FAILED'}; written to {args.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
