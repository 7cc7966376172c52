"""Exactly once under concurrency, in one process: the worker's lease, concurrent ticks, and
gapless invoice numbers when many purchases run at the same time. Both backends."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from engine_kit import utc
from sqlalchemy import select

from creditflow.invoicing.models import Invoice
from creditflow.kit.errors import PaymentFailed
from creditflow.payment.models import SandboxCharge
from creditflow.subscription.calendar import LEASE
from creditflow.subscription.models import Subscription
from creditflow.purchase.renewal import run_due
from creditflow.purchase.subscribe import subscribe
from creditflow.worker.runner import claim_due_subscriptions, tick

START = utc(2026, 3, 10, 10)
RENEWAL = utc(2026, 4, 10, 10)


def _subscribed(engine, n: int, token: str = "pm_card_ok", term: str = "monthly") -> list[tuple[str, str]]:
    pairs = []
    for _ in range(n):
        cus = engine.customer(token)
        pairs.append((cus, subscribe(engine.ctx, cus, "standard", term).id))
    return pairs


def test_a_leased_subscription_is_skipped_by_other_workers_until_the_lease_expires(engine):
    [(cus, sub_id)] = _subscribed(engine, 1)

    # Worker A claims it, then dies before doing anything.
    claimed = engine.db.run(lambda session: claim_due_subscriptions(session, RENEWAL, "worker-a", 10))
    assert claimed == [sub_id]
    leased = engine.sub(sub_id)
    assert (leased.lease_owner, leased.due_at) == ("worker-a", RENEWAL + LEASE)

    # Worker B, at the same instant, neither claims it nor runs it directly.
    tick(engine.ctx, RENEWAL, owner="worker-b")
    assert run_due(engine.ctx, sub_id, RENEWAL, owner="worker-b") == 0
    assert engine.charged(cus) == [3000]
    assert engine.sub(sub_id).lease_owner == "worker-a"

    # Once the lease has run out, another worker takes over and renews it exactly once.
    tick(engine.ctx, RENEWAL + LEASE - timedelta(seconds=1), owner="worker-b")
    assert engine.charged(cus) == [3000]
    tick(engine.ctx, RENEWAL + LEASE, owner="worker-b")
    assert engine.charged(cus) == [3000, 3000]
    renewed = engine.sub(sub_id)
    assert (renewed.status, renewed.lease_owner, renewed.due_at) == ("active", None, utc(2026, 5, 10, 10))
    # The period renewed is the one that was due, even though it ran five minutes late.
    assert (renewed.current_term_start, renewed.current_term_end) == (RENEWAL, utc(2026, 5, 10, 10))


def test_the_lease_holder_itself_runs_its_claimed_work(engine):
    [(cus, sub_id)] = _subscribed(engine, 1)
    engine.db.run(lambda session: claim_due_subscriptions(session, RENEWAL, "worker-a", 10))
    assert run_due(engine.ctx, sub_id, RENEWAL, owner="worker-a") >= 1
    assert engine.charged(cus) == [3000, 3000]


def test_concurrent_ticks_renew_and_grant_each_subscription_once(engine):
    monthly = _subscribed(engine, 24)
    quarterly = _subscribed(engine, 8, term="quarterly")
    declined = _subscribed(engine, 6, token="pm_card_ok_then_declined")
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        barrier.wait()
        tick(engine.ctx, RENEWAL, owner=f"thread-{n}", batch=3)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))

    for cus, sub_id in monthly:
        assert engine.charged(cus) == [3000, 3000], cus
        assert [i.purpose for i in engine.invoices(cus)] == ["subscription_create", "renewal"]
        assert len(engine.lots(cus)) == 2
        assert engine.event_count("subscription.renewed", cus) == 1
        assert engine.sub(sub_id).current_term_end == utc(2026, 5, 10, 10)
    for cus, sub_id in quarterly:
        assert engine.charged(cus) == [7650]
        assert [lot.created_at for lot in engine.lots(cus)] == [START, RENEWAL]
        assert engine.sub(sub_id).credit_period_end == utc(2026, 5, 10, 10)
    for cus, sub_id in declined:
        assert engine.charged(cus) == [3000]
        assert [a.status for a in engine.attempts(cus)] == ["succeeded", "failed"]
        assert engine.event_count("subscription.past_due", cus) == 1
        assert engine.sub(sub_id).next_retry_at == RENEWAL + timedelta(days=1)
    with engine.db.transaction(readonly=True) as session:
        assert session.scalar(select(Subscription.id).where(Subscription.lease_owner.is_not(None))) is None


def test_concurrent_purchases_get_distinct_gapless_invoice_numbers(engine):
    customers = [engine.customer("pm_card_declined" if n % 5 == 0 else "pm_card_ok") for n in range(20)]
    barrier = threading.Barrier(len(customers))

    def buy(cus: str) -> str:
        barrier.wait()
        try:
            subscribe(engine.ctx, cus, "standard", "monthly")
            return "paid"
        except PaymentFailed:
            return "declined"

    with ThreadPoolExecutor(len(customers)) as pool:
        outcomes = Counter(pool.map(buy, customers))

    assert outcomes == {"paid": 16, "declined": 4}
    with engine.db.transaction(readonly=True) as session:
        invoices = list(session.scalars(select(Invoice).order_by(Invoice.number)))
        charges = list(session.scalars(select(SandboxCharge)))
    assert [i.number for i in invoices] == list(range(1, 21))
    assert sorted(i.customer_id for i in invoices) == sorted(customers)  # one each
    assert Counter(i.status for i in invoices) == {"paid": 16, "void": 4}
    assert len(charges) == 20

    # The sequence continues with the renewals, still without a gap.
    tick(engine.ctx, RENEWAL)
    with engine.db.transaction(readonly=True) as session:
        numbers = list(session.scalars(select(Invoice.number).order_by(Invoice.number)))
    assert numbers == list(range(1, 37))


def test_many_threads_buying_for_the_same_customer_charge_once(engine):
    cus = engine.customer()
    barrier = threading.Barrier(8)

    def buy(_):
        barrier.wait()
        try:
            subscribe(engine.ctx, cus, "standard", "monthly")
            return "paid"
        except Exception as exc:  # noqa: BLE001 - the codes are asserted below
            return getattr(exc, "code", repr(exc))

    with ThreadPoolExecutor(8) as pool:
        outcomes = Counter(pool.map(buy, range(8)))

    assert outcomes == {"paid": 1, "subscription_exists": 7}
    assert engine.charged(cus) == [3000]
    assert len(engine.invoices(cus)) == 1
