"""The database goes away under load; clients see answers they can act on, never a 5xx bug.

PostgreSQL: every connection of the test database is terminated (`pg_terminate_backend`, as a
failover or a server restart does) twice, while 8 threads spend credits and another buys
top-ups through a `creditflow serve` process; the second time the database also refuses new
connections for half a second, as a restarting server does. A unit of work that lost its
connection before its commit is retried on a new one; one that lost it during its commit, or
found no database, answers 503 `unavailable` with Retry-After, and the client retries with
the same reference. Every answered spend is in the ledger exactly once, and the ledger
balances.

SQLite: the API process spends while a separate `creditflow worker` process renews
subscriptions that fell due on real time (the worker never touches test clocks, so they were
started three months ago in this process): two processes writing the same file at once. No
client sees "database is locked" (or any 5xx), and the worker renews every one of them.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from creditflow.api.errors import exception_response
from creditflow.credits.promo import grant_promo_credits
from creditflow.customer.service import create_customer
from creditflow.kit.clock import FixedClock
from creditflow.purchase.payment_method import set_payment_method
from creditflow.purchase.subscribe import subscribe
from creditflow.wiring import build_context
from fault_kit import CLI, SERVER_KEY, SUPPORT_KEY, Server, check_invariants, setup_subscribed

SPENDERS = 8


class Traffic:
    """Client threads against one server: each spends (or buys) with a new reference, and
    sends the same request again, with the same reference, after a 503 (as its Retry-After
    asks). Records what was answered and every answer a client should never see."""

    def __init__(self, url: str):
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answered: list[str] = []  # references answered 200/201
        self.statuses: dict[int, int] = {}
        self.bad: list[str] = []  # 5xx other than a retryable 503, transport errors
        self.threads: list[threading.Thread] = []

    def start(self, name: str, path_of, body_of, key: str = SERVER_KEY) -> None:
        def loop():
            with httpx.Client(base_url=self.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
                n = 0
                while not self.stop.is_set():
                    reference = f"{name}-{n}"
                    n += 1
                    self._until_answered(client, path_of(n), body_of(reference), reference)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _until_answered(self, client: httpx.Client, path: str, body: dict, reference: str) -> None:
        for _ in range(50):
            try:
                response = client.post(path, json=body)
            except httpx.TransportError as exc:
                with self.lock:
                    self.bad.append(f"{reference}: {exc!r}")
                return
            with self.lock:
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code == 503 and response.json()["error"]["code"] == "unavailable" \
                    and response.headers.get("Retry-After"):
                time.sleep(0.05)
                continue
            with self.lock:
                if response.status_code >= 500:
                    self.bad.append(f"{reference}: {response.status_code} {response.text}")
                elif response.status_code in (200, 201):
                    self.answered.append(reference)
            return
        with self.lock:
            self.bad.append(f"{reference}: still 503 after 50 tries")

    def wait_for(self, prefix: str, more: int, seconds: float = 120) -> None:
        """Until `more` further requests named `prefix...` are answered (or `seconds` pass)."""
        def answered() -> int:
            with self.lock:
                return sum(1 for reference in self.answered if reference.startswith(prefix))

        target = answered() + more
        deadline = time.monotonic() + seconds
        while answered() < target and time.monotonic() < deadline and not self.bad:
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in self.threads)


def terminate_connections(admin_url: str, database: str, refuse_for: float = 0.0) -> int:
    """Terminate every connection to `database`; with `refuse_for`, refuse new ones that long."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            if refuse_for:
                conn.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                terminated = len(conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).all())
                time.sleep(refuse_for)
            finally:
                if refuse_for:
                    conn.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            return terminated
    finally:
        admin.dispose()


def spend_references(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text(
                "SELECT reference, COUNT(*) FROM credit_spends WHERE kind = 'spend' GROUP BY reference")).all())
    finally:
        engine.dispose()


def test_postgres_connections_terminated_twice_under_load(pg_db, tmp_path):
    clock_id, customer_id, _ = setup_subscribed(pg_db)
    server = Server(pg_db.url, tmp_path)
    admin_url = make_url(pg_db.url).set(database="postgres").render_as_string(hide_password=False)
    database = make_url(pg_db.url).database
    traffic = Traffic(server.url)
    try:
        server.ok("POST", f"/v1/customers/{customer_id}/credits/grants",
                  {"amount": "100000", "reason": "fault battery"}, key=SUPPORT_KEY)
        for n in range(SPENDERS):
            traffic.start(f"spend{n}", lambda _: f"/v1/customers/{customer_id}/credits/spend",
                          lambda reference: {"amount": "0.5", "feature": "standard_models", "reference": reference})
        traffic.start("topup", lambda _: f"/v1/customers/{customer_id}/top_ups",
                      lambda reference: {"bundle": "credits_1000", "reference": reference})
        # Each fault comes once the clients have got some spends through since the last one,
        # however slow the machine: traffic before, between and after the faults.
        terminated = []
        for refuse_for in (0.0, 0.5, None):
            traffic.wait_for("spend", 15)
            if refuse_for is not None:
                terminated.append(terminate_connections(admin_url, database, refuse_for))
        traffic.finish()
        # The server's own connections were cut both times (its pool and its spend connections).
        assert all(count > 0 for count in terminated), terminated
        assert traffic.bad == [], traffic.bad[:10]
        spends = [ref for ref in traffic.answered if ref.startswith("spend")]
        top_ups = [ref for ref in traffic.answered if ref.startswith("topup")]
        assert len(spends) >= 45 and top_ups, traffic.statuses
        # Whatever was left unknown by a lost connection is reconciled by the clock's run.
        server.ok("POST", f"/v1/test_clocks/{clock_id}/advance", {"frozen_time": "2026-03-10T11:00:00Z"})
    finally:
        traffic.stop.set()
        server.stop()

    in_ledger = spend_references(pg_db.url)
    assert {ref: in_ledger.get(ref) for ref in spends} == {ref: 1 for ref in spends}
    counts = check_invariants(pg_db.url, tmp_path)
    assert counts["top_up_lots"] >= len(top_ups)
    print(f"terminated {terminated} connections; answers {traffic.statuses}")


RENEWING = 12
MONTHS_AGO = 3


def start_in_the_past(db, customers: int) -> list[str]:
    """Customers on real time whose monthly subscriptions began MONTHS_AGO months ago: each has
    MONTHS_AGO renewals due, which only a worker does."""
    past = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=31 * MONTHS_AGO + 1)
    ctx = build_context(db, clock=FixedClock(past))
    ids = []
    for n in range(customers):
        with db.transaction() as session:
            ids.append(create_customer(ctx, session, external_id=f"past-{n}", email=f"past{n}@example.com").id)
        set_payment_method(ctx, ids[-1], "pm_card_ok")
        subscribe(ctx, ids[-1], "basic", "monthly")
        grant_promo_credits(ctx, ids[-1], amount="100000", reason="fault battery")
    return ids


def test_sqlite_api_and_worker_processes_write_at_once(sqlite_db, tmp_path):
    customers = start_in_the_past(sqlite_db, RENEWING)
    server = Server(sqlite_db.url, tmp_path, args=("--no-worker",))
    traffic = Traffic(server.url)
    worker = None
    try:
        for n in range(SPENDERS):
            traffic.start(f"spend{n}", lambda i, n=n: f"/v1/customers/{customers[(n + i) % RENEWING]}/credits/spend",
                          lambda reference: {"amount": "0.5", "feature": "standard_models", "reference": reference})
        traffic.wait_for("spend", 20)
        env = {**os.environ, "CREDITFLOW_DATABASE_URL": sqlite_db.url}
        env.pop("CREDITFLOW_FAULT_POINT", None)
        worker = subprocess.Popen(CLI + ["worker", "--interval", "0.2", "--batch", "2"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and renewals_paid(sqlite_db.url) < RENEWING * MONTHS_AGO:
            assert worker.poll() is None, worker.stderr.read()[-3000:]
            time.sleep(0.2)
        traffic.wait_for("spend", 20)
        traffic.finish()
    finally:
        traffic.stop.set()
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
        server.stop()
    assert traffic.bad == [], traffic.bad[:10]
    assert len(traffic.answered) >= 40 and set(traffic.statuses) == {200}, traffic.statuses
    assert renewals_paid(sqlite_db.url) == RENEWING * MONTHS_AGO
    in_ledger = spend_references(sqlite_db.url)
    assert {ref: in_ledger.get(ref) for ref in traffic.answered} == {ref: 1 for ref in traffic.answered}
    check_invariants(sqlite_db.url, tmp_path)


def renewals_paid(database_url: str) -> int:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT COUNT(*) FROM invoices WHERE status = 'paid'"
                                     " AND purpose = 'renewal'")).scalar_one()
    finally:
        engine.dispose()



def test_a_deadlock_on_the_raw_cursor_is_retried_and_never_a_500(pg_db):
    """The credit ledger sends its statements on psycopg's cursor, under SQLAlchemy's session;
    a deadlock there (found by the soak: a test-clock renewal against a spend) raises psycopg's
    own error, which the unit of work retries as it does SQLAlchemy's; if it still fails, the
    API answers 503 `unavailable`, as for any database error."""
    calls = []

    def work(session):
        calls.append(1)
        if len(calls) == 1:
            raw = session.connection().connection.driver_connection.cursor()
            raw.execute("DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '40P01'; END $$")
        return session.execute(text("SELECT 1")).scalar_one()

    assert pg_db.run(work) == 1 and len(calls) == 2

    answer = exception_response(psycopg.errors.DeadlockDetected("deadlock detected"), "POST", "/v1/x")
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1")
