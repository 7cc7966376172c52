"""Concurrent spends on SQLite and PostgreSQL: exactly as many succeed as the balance allows.

Each thread uses its own connection from the pool, as API processes would. Every request is
for 7 credits against balances that cover only some of them, so a lost update (two spends
reading the same balance) would show up as one success too many, and a double spend as a
wrong balance or a failing ledger check.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

from creditflow.credits.balance import get_balance
from creditflow.credits.holds import hold_credits
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import spend_credits
from creditflow.kit.errors import InsufficientCredits

from .credit_kit import assert_ledger_clean, c, new_customer

THREADS = 10


def _run(threads: int, work) -> list:
    """Run `work(thread_index)` in threads that start together; collect what each returned."""
    barrier = threading.Barrier(threads)
    results: list = [None] * threads
    errors: list = []

    def target(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=300)
    assert not errors, errors
    return results


def _spend_all(ctx, customer_ids_for_thread, amount="7", per_thread=6):
    def work(i):
        outcome = Counter()
        for n in range(per_thread):
            cid = customer_ids_for_thread(i, n)
            try:
                spend_credits(ctx, cid, amount=amount, feature="standard_models", reference=f"t{i}-{n}")
                outcome[cid, "ok"] += 1
            except InsufficientCredits:
                outcome[cid, "short"] += 1
        return outcome
    return sum(_run(THREADS, work), Counter())


def test_many_threads_spending_from_one_customer(ctx):
    cid = new_customer(ctx)
    grant_promo_credits(ctx, cid, amount="200.5", reason="x")  # + 100 free: 300.5 = 42 spends of 7

    outcome = _spend_all(ctx, lambda i, n: cid)

    assert outcome[cid, "ok"] == 42 and outcome[cid, "short"] == THREADS * 6 - 42
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c("6.5")
    assert_ledger_clean(ctx.db)


def test_many_threads_spending_from_different_customers(ctx):
    customers = [new_customer(ctx) for _ in range(4)]
    extra = {cid: k * 10 for k, cid in enumerate(customers)}  # 100, 110, 120, 130 credits
    for cid, amount in extra.items():
        if amount:
            grant_promo_credits(ctx, cid, amount=amount, reason="x")
    rng = random.Random(7)
    plan = [[rng.choice(customers) for _ in range(6)] for _ in range(THREADS)]

    outcome = _spend_all(ctx, lambda i, n: plan[i][n])

    for cid in customers:
        requested = sum(row.count(cid) for row in plan)
        allowed = min(requested, (100 + extra[cid]) // 7)
        assert outcome[cid, "ok"] == allowed, cid
        assert outcome[cid, "short"] == requested - allowed
        assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(100 + extra[cid] - 7 * allowed)
    assert_ledger_clean(ctx.db)


def test_the_same_reference_from_many_threads_spends_once(ctx):
    cid = new_customer(ctx)

    results = _run(THREADS, lambda i: spend_credits(ctx, cid, amount="30", feature="standard_models",
                                                    reference="the-job"))

    assert len({r.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(70)
    assert_ledger_clean(ctx.db)


def test_holds_and_spends_race_for_the_same_credits(ctx):
    cid = new_customer(ctx)

    def work(i):
        try:
            if i % 2:
                hold_credits(ctx, cid, amount="30", feature="standard_models", reference=f"h{i}", ttl_seconds=60)
            else:
                spend_credits(ctx, cid, amount="30", feature="standard_models", reference=f"s{i}")
            return True
        except InsufficientCredits:
            return False

    assert sum(_run(THREADS, work)) == 3
    balance = ctx.db.read(lambda session: get_balance(ctx, session, cid))
    assert balance.available == c(10) and balance.held in (c(0), c(30), c(60), c(90))
    assert_ledger_clean(ctx.db)
