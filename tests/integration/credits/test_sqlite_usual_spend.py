"""SQLite's usual spend (`spend._spend_usual`: one read instead of three, on the writers' own
connection) against the general path (`spend._spend`).

For random customers (lots of every kind with random sizes, ages and expiries, a plan or Free, a
time zone, today's free credits or not, holds, earlier references, a test clock) and random spends,
both run on the same database state, each in a write transaction that is then rolled back:
whenever the usual spend spends, the general path must do exactly the same (the same draws,
balance, lots, ledger entries, events, spend row and account totals); whenever it declines, it
must have changed nothing, and the service then takes the general path.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from creditflow.credits import repository as repo
from creditflow.credits import spend as spend_module
from creditflow.credits.holds import hold_credits
from creditflow.credits.spend import _spend, _spend_usual, spend_credits
from creditflow.customer.service import create_test_clock
from creditflow.kit.credits import Credits
from creditflow.kit.db import grouped
from creditflow.kit.errors import CreditflowError, InvalidRequest
from creditflow.team.service import ensure_team

from .credit_kit import (START, assert_ledger_clean, c, free_credits_today, funded_customer, give_lot, make_ctx,
                         new_customer, subscribed)
from .test_pg_spend_function import ZONES, lots

amounts = st.integers(min_value=1, max_value=120_000).map(Credits)


@pytest.fixture
def sqlite_ctx(sqlite_db):
    return make_ctx(sqlite_db)


# The tables a spend may write, with the rows of one customer. Every column of every row is read
# as SQLite's quote() spells it, so that a value stored with another storage class or another text
# (1000 against 1000.0 or '1000', another date format, JSON spaced otherwise) differs.
_TABLES = ("credit_accounts", "credit_lots", "credit_entries", "credit_spends", "events", "credit_usage",
           "team_spends")
# Ids made afresh by each way (a spend's, its ledger lines', its event's) are compared by their shape.
_NEW_ID = re.compile(r"\b(spd|cre|evt)_[0-9A-Z]{26}\b")


def _state(cursor: repo.UnitCursor, customer_id: str) -> dict:
    raw = cursor.raw
    state = {}
    for table in _TABLES:
        columns = [row[1] for row in raw.execute(f"PRAGMA table_info({table})").fetchall()]
        quoted = ", ".join(f"quote({column})" for column in columns)
        raw.execute(f"SELECT {quoted} FROM {table} WHERE customer_id = ? ORDER BY rowid", (customer_id,))
        state[table] = [tuple(_NEW_ID.sub(r"\1_<new>", value) for value in row) for row in raw.fetchall()]
    return state


def _both_ways(ctx, customer_id: str, amount: Credits, feature: str, reference: str):
    """(state before), (what the usual spend did, the state after it), (what the general path did
    or the error it raised, the state after it), and whether the usual spend wrote a plain spend
    (`book.write_plain_spend`, rather than through a book): each way in a write transaction rolled
    back after."""
    feature_def = ctx.catalog.feature(feature)
    connection = ctx.db.engine.raw_connection()
    try:
        cursor = repo.UnitCursor(ctx.db.engine.dialect, connection.cursor())
        before = _state(cursor, customer_id)
        cursor.raw.execute("BEGIN IMMEDIATE")
        with mock.patch.object(spend_module, "write_plain_spend", wraps=spend_module.write_plain_spend) as plain:
            try:
                usual = _spend_usual(ctx, cursor, customer_id, amount, feature_def, reference)
            except CreditflowError as exc:  # a refusal: the service rolls back and takes the general path
                usual = exc
        after_usual = _state(cursor, customer_id)
        connection.rollback()
        cursor.raw.execute("BEGIN IMMEDIATE")
        try:
            general = _spend(ctx, cursor, customer_id, amount, feature_def, reference)
        except CreditflowError as exc:
            general = exc
        after_general = _state(cursor, customer_id)
        connection.rollback()
    finally:
        connection.close()
    return before, (usual, after_usual), (general, after_general), plain.called


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.sampled_from([None, "basic", "standard", "ultimate"]),
    zone=st.sampled_from(ZONES),
    given_lots=lots,
    free_today=st.booleans(),
    hold=st.one_of(st.none(), st.tuples(amounts, st.integers(min_value=60, max_value=7200))),
    later=st.integers(min_value=0, max_value=60 * 36),  # minutes after START when the spend comes
    amount=amounts,
    feature=st.sampled_from(["standard_models"] * 3 + ["pro_models", "private_generations", "video_models"]),
    reuse_reference=st.integers(min_value=0, max_value=9).map(lambda n: n == 0),
    clock=st.booleans(),
)
def test_the_usual_spend_spends_exactly_as_the_general_path_or_declines(
        sqlite_ctx, plan, zone, given_lots, free_today, hold, later, amount, feature, reuse_reference, clock):
    ctx = sqlite_ctx
    ctx.clock.set(START)
    test_clock = None
    if clock:
        with ctx.db.transaction() as session:
            test_clock = create_test_clock(session, START + timedelta(minutes=later), now=START).id
    customer_id = new_customer(ctx, timezone=zone, test_clock=test_clock)
    if plan is not None:
        subscribed(ctx, customer_id, plan)
    for kind, size, created_hours, expires_hours in given_lots:
        created = START - timedelta(hours=created_hours)
        expires_at = None if expires_hours is None else START + timedelta(hours=expires_hours)
        if expires_at is not None and expires_at <= created:
            expires_at = created + timedelta(minutes=30)
        give_lot(ctx, customer_id, kind, size, created=created, expires_at=expires_at)
    if free_today:
        free_credits_today(ctx, customer_id)
    if hold is not None:
        try:
            hold_credits(ctx, customer_id, amount=hold[0], feature="standard_models", reference="the-hold",
                         ttl_seconds=hold[1])
        except CreditflowError:
            pass
    ctx.clock.set(START + timedelta(minutes=later))

    reference = "the-hold" if reuse_reference and hold is not None else "job-1"
    before, (usual, after_usual), (general, after_general), plain = _both_ways(ctx, customer_id, amount, feature,
                                                                                reference)

    event("declined" if usual is None else "refused" if isinstance(usual, CreditflowError)
          else "spent plainly" if plain else "spent through the book")
    if usual is None or isinstance(usual, CreditflowError):
        # Declined or refused: the transaction is rolled back, and the general path answers.
        if usual is not None:
            assert isinstance(general, CreditflowError) and (usual.code, usual.message) == (general.code,
                                                                                           general.message)
        return
    assert not isinstance(general, Exception), f"the usual spend spent where the general path refused: {general}"
    assert not general.replayed and not usual.replayed
    assert [(d.lot_id, d.kind, d.amount) for d in usual.draws] == [(d.lot_id, d.kind, d.amount)
                                                                   for d in general.draws]
    assert (usual.balance, usual.created_at, usual.amount, usual.feature, usual.status, usual.queue) == (
        general.balance, general.created_at, general.amount, general.feature, general.status, general.queue)
    assert after_usual == after_general
    assert after_usual != before


@pytest.fixture
def customer(sqlite_ctx):
    return funded_customer(sqlite_ctx)


def _usual(ctx, customer_id, amount, feature="standard_models", reference="job-1"):
    return _both_ways(ctx, customer_id, c(amount), feature, reference)[1][0]


def test_the_usual_spend_is_done_on_the_writers_connection(sqlite_ctx, customer):
    _, (usual, _), _, plain = _both_ways(sqlite_ctx, customer, c("7.25"), "standard_models", "job-1")
    assert usual is not None and plain  # free credits already made today, nothing due: a plain spend
    result = spend_credits(sqlite_ctx, customer, amount=c("7.25"), feature="standard_models", reference="job-1")
    assert [d.amount for d in result.draws] == [c("7.25")] and result.draws[0].kind == "free"
    assert result.balance == c("592.75")
    assert grouped.writer_of(sqlite_ctx.db).connection is not None  # the usual path ran, on its connection
    again = spend_credits(sqlite_ctx, customer, amount=c("7.25"), feature="standard_models", reference="job-1")
    assert again.replayed and again.id == result.id
    assert_ledger_clean(sqlite_ctx.db)


@pytest.mark.parametrize("case", ["replay", "unknown_customer", "no_account_yet", "team"])
def test_the_usual_spend_declines_what_needs_the_general_path(sqlite_ctx, customer, case):
    ctx, customer_id = sqlite_ctx, customer
    if case == "replay":
        spend_credits(ctx, customer, amount=c(1), feature="standard_models", reference="job-1")
    elif case == "unknown_customer":
        customer_id = "cus_nobody"
    elif case == "no_account_yet":
        customer_id = new_customer(ctx)
    elif case == "team":
        with ctx.db.transaction() as session:
            ensure_team(session, customer_id, anchor=START, now=START)
    assert _usual(ctx, customer_id, "1") is None


def test_a_refusal_reads_as_the_general_path_says_it(sqlite_ctx, customer):
    with pytest.raises(CreditflowError) as short:
        spend_credits(sqlite_ctx, customer, amount=c("600.001"), feature="standard_models", reference="job-1")
    assert short.value.code == "insufficient_credits"
    with pytest.raises(InvalidRequest) as team:
        with sqlite_ctx.db.transaction() as session:
            ensure_team(session, customer, anchor=START, now=START)
        spend_credits(sqlite_ctx, customer, amount=c(1), feature="standard_models", reference="job-2")
    assert team.value.code == "member_required"
    assert_ledger_clean(sqlite_ctx.db)


def test_a_broken_writers_connection_is_replaced(sqlite_ctx, customer):
    """The writers' connection failing (here: closed under it) costs that spend the general path,
    never the spend itself, and the next usual spend opens a new connection."""
    spend_credits(sqlite_ctx, customer, amount=c(1), feature="standard_models", reference="job-1")
    writer = grouped.writer_of(sqlite_ctx.db)
    broken = writer.connection
    broken.close()
    result = spend_credits(sqlite_ctx, customer, amount=c(2), feature="standard_models", reference="job-2")
    assert not result.replayed and result.balance == c(597)
    assert writer.connection is None
    spend_credits(sqlite_ctx, customer, amount=c(3), feature="standard_models", reference="job-3")
    assert writer.connection is not None and writer.connection is not broken
    with pytest.raises(sqlite3.ProgrammingError):
        broken.execute("SELECT 1")
    assert_ledger_clean(sqlite_ctx.db)


def test_disposing_of_the_database_closes_the_writers_connection(sqlite_ctx, customer):
    """The writer took its connection out of the pool, so the pool's dispose alone would leave
    it open; after dispose the next usual spend opens a new one."""
    spend_credits(sqlite_ctx, customer, amount=c(1), feature="standard_models", reference="job-1")
    writer = grouped.writer_of(sqlite_ctx.db)
    before = writer.connection
    sqlite_ctx.db.dispose()
    assert writer.connection is None
    with pytest.raises(sqlite3.ProgrammingError):
        before.execute("SELECT 1")
    result = spend_credits(sqlite_ctx, customer, amount=c(2), feature="standard_models", reference="job-2")
    assert result.balance == c(597) and writer.connection not in (None, before)
    assert_ledger_clean(sqlite_ctx.db)


def test_spends_that_arrive_together_are_committed_together(sqlite_ctx, customer, grouped_commits):
    """32 threads spend at once, each with its own reference, half of them more than is left for
    one of them (refused), a few repeating a reference (replayed): every spend is answered as if
    alone, the ledger adds up, and fewer commits than spends were needed."""
    ctx = sqlite_ctx
    commits = grouped_commits
    rich = [new_customer(ctx) for _ in range(4)]
    for customer_id in rich:
        give_lot(ctx, customer_id, "promo", c(1000), created=START - timedelta(days=1), expires_at=None)
    start = threading.Barrier(32)

    def one(n: int):
        start.wait()
        customer_id = rich[n % 4]
        try:
            return spend_credits(ctx, customer_id, amount=c(2000 if n % 8 == 7 else 10), feature="standard_models",
                                 reference=f"job-{n % 28}")
        except CreditflowError as exc:
            return exc

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(32)))
    refused = [r for r in results if isinstance(r, CreditflowError)]
    spent = [r for r in results if not isinstance(r, CreditflowError)]
    assert {r.code for r in refused} <= {"insufficient_credits", "reference_reused"} and len(refused) >= 4
    firsts = {(r.customer_id, r.reference): r for r in spent if not r.replayed}
    for r in spent:
        if r.replayed:
            assert firsts[(r.customer_id, r.reference)].id == r.id
    for customer_id in rich:
        mine = sorted((r for r in firsts.values() if r.customer_id == customer_id), key=lambda r: r.balance,
                      reverse=True)
        for earlier, later in zip(mine, mine[1:]):
            assert later.balance == earlier.balance - later.amount  # each saw the one before it, as if alone
        with ctx.db.transaction(readonly=True) as session:
            available = session.connection().exec_driver_sql(
                "SELECT available FROM credit_accounts WHERE customer_id = ?", (customer_id,)).scalar()
        assert mine[-1].balance == Credits(available)
    assert sum(commits) >= 32 - len(refused) and max(commits) > 1 and len(commits) < 32
    assert_ledger_clean(ctx.db)


def test_queued_spends_are_written_by_the_writers_thread_with_the_others(sqlite_ctx, monkeypatch):
    """Spends queued by `queue_spend` (as the API's event loop queues them) and spends made by
    threads arrive together: each queued one is told its result once, from the writer's thread,
    after its commit; a refusal or a replay is handed back (None) and the general path answers it
    as it always does; the ledger adds up; the writer's thread ends once idle, and comes back."""
    ctx = sqlite_ctx
    monkeypatch.setattr(grouped, "IDLE_SECONDS", 0.2)
    rich = [new_customer(ctx) for _ in range(3)]
    for customer_id in rich:
        give_lot(ctx, customer_id, "promo", c(1000), created=START - timedelta(days=1), expires_at=None)
    told: dict[str, list] = {}
    lock = threading.Lock()
    all_told = threading.Event()
    queued = [f"queued-{n}" for n in range(40)]

    def on_done(reference):
        def done(result):
            with lock:
                told.setdefault(reference, []).append((result, threading.current_thread().name))
                if len(told) == len(queued):
                    all_told.set()
        return done

    def spend_directly(n: int):
        try:
            return spend_credits(ctx, rich[n % 3], amount=c(5), feature="standard_models", reference=f"direct-{n}")
        except CreditflowError as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        direct = [pool.submit(spend_directly, n) for n in range(16)]
        for n, reference in enumerate(queued):
            amount = c(2000) if n % 10 == 9 else c(10)  # more than anyone has: refused
            assert spend_module.queue_spend(ctx, rich[n % 3], amount=amount, feature="standard_models",
                                            reference=reference, on_done=on_done(reference))
        direct = [f.result() for f in direct]
    assert all_told.wait(10)
    assert all(len(answers) == 1 for answers in told.values())  # each told once
    # Told by the writer's thread, or by a thread that spent directly and wrote them with its own;
    # never by the thread that queued them, which does not wait.
    writers = {thread for answers in told.values() for _, thread in answers}
    assert writers and all(name == "creditflow-writer" or name.startswith("ThreadPoolExecutor")
                           for name in writers), writers
    handed_back = sorted(reference for reference, [(result, _)] in told.items() if result is None)
    assert handed_back == sorted(f"queued-{n}" for n in range(9, 40, 10))
    for reference in handed_back:
        with pytest.raises(CreditflowError) as refused:
            spend_credits(ctx, rich[int(reference.split("-")[1]) % 3], amount=c(2000), feature="standard_models",
                          reference=reference)
        assert refused.value.code == "insufficient_credits"
    spent = [result for [(result, _)] in told.values() if result is not None] + direct
    assert all(not isinstance(r, CreditflowError) for r in direct) and len(spent) == 36 + 16
    for customer_id in rich:
        mine = sorted((r for r in spent if r.customer_id == customer_id), key=lambda r: r.balance, reverse=True)
        for earlier, later in zip(mine, mine[1:]):
            assert later.balance == earlier.balance - later.amount  # each saw the one before it, as if alone
        assert mine[-1].balance == _available(ctx, customer_id)
    # A repeat of a queued reference is handed back, and the general path replays it.
    first = next(result for [(result, _)] in told.values() if result is not None)
    again = threading.Event()
    assert spend_module.queue_spend(ctx, first.customer_id, amount=first.amount, feature="standard_models",
                                    reference=first.reference, on_done=lambda result: again.set() if result is None
                                    else None)
    assert again.wait(5)
    assert spend_credits(ctx, first.customer_id, amount=first.amount, feature="standard_models",
                         reference=first.reference).id == first.id
    writer = grouped.writer_of(ctx.db)
    deadline = time.monotonic() + 5
    while writer.thread is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.thread is None  # idle: gone
    back = threading.Event()
    assert spend_module.queue_spend(ctx, rich[0], amount=c(1), feature="standard_models", reference="after-idle",
                                    on_done=lambda result: back.set() if result is not None else None)
    assert back.wait(5)
    assert_ledger_clean(ctx.db)


@pytest.mark.parametrize("amount, feature, reason", [
    ("0", "standard_models", "bad amount"), ("1", "telepathy", "unknown feature")])
def test_queue_spend_takes_nothing_the_general_path_must_refuse(sqlite_ctx, customer, amount, feature, reason):
    told = []
    assert not spend_module.queue_spend(sqlite_ctx, customer, amount=amount, feature=feature, reference="job-1",
                                        on_done=told.append), reason
    time.sleep(0.1)
    assert told == []


def _available(ctx, customer_id: str) -> Credits:
    with ctx.db.transaction(readonly=True) as session:
        return Credits(session.connection().exec_driver_sql(
            "SELECT available FROM credit_accounts WHERE customer_id = ?", (customer_id,)).scalar())


def test_a_failing_writer_hands_its_spends_back_and_keeps_writing(sqlite_ctx, customer, monkeypatch):
    """An unexpected error in the writer's thread (a bug, not a busy database) hands that batch
    back to the general path; the thread goes on with the next spends."""
    real_spend_usual = spend_module._spend_usual

    def broken_once(*args):
        monkeypatch.setattr(spend_module, "_spend_usual", real_spend_usual)
        raise RuntimeError("a bug")

    monkeypatch.setattr(spend_module, "_spend_usual", broken_once)
    answers = []
    told = threading.Semaphore(0)

    def on_done(result):
        answers.append(result)
        told.release()

    for reference in ("job-1", "job-2"):
        assert spend_module.queue_spend(sqlite_ctx, customer, amount=c(1), feature="standard_models",
                                        reference=reference, on_done=on_done)
        assert told.acquire(timeout=5)
    assert answers[0] is None and answers[1].reference == "job-2" and answers[1].amount == c(1)
    assert spend_credits(sqlite_ctx, customer, amount=c(1), feature="standard_models", reference="job-1").balance == (
        answers[1].balance - c(1))
    assert_ledger_clean(sqlite_ctx.db)
