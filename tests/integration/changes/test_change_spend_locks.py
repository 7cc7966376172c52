"""Spends and immediate plan changes at the same time on PostgreSQL: a change locks the customer
and then the credit account, a spend locks the account and its ledger inserts then take a
key-share lock on the customer (foreign keys). Neither side may end in an error."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor

import pytest

from creditflow.credits.spend import spend_credits
from creditflow.purchase.change import change_subscription
from creditflow.purchase.subscribe import subscribe

START = datetime(2026, 3, 10, 10, tzinfo=timezone.utc)


def test_spends_during_immediate_upgrades_neither_fail_nor_deadlock(story, db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks and deadlocks are PostgreSQL's")
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "basic", "monthly")
    stop = threading.Event()
    errors: list[BaseException] = []
    spent: list[int] = []

    def spender(n: int) -> None:
        i = 0
        while not stop.is_set() and i < 200:
            try:
                spend_credits(s.ctx, s.customer_id, amount="1", feature="standard_models", reference=f"t{n}-{i}")
                spent.append(1)
            except BaseException as exc:  # noqa: BLE001 - every error is the failure under test
                errors.append(exc)
            i += 1

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(spender, n) for n in range(16)]
        for plan in ("standard", "ultimate"):
            change_subscription(s.ctx, sub.id, plan=plan, term="monthly", timing="immediate")
        stop.set()
        for future in futures:
            future.result()
    assert errors == []
    assert s.sub(sub.id).plan == "ultimate"
    assert len(spent) >= 16
