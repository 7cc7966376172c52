"""A coupon's redemption limit holds under concurrency, on SQLite and on PostgreSQL: 20 customers
subscribing at once with a coupon limited to 5 get exactly 5 discounts; the other 15 are refused
`coupon_exhausted` and charged nothing. Real threads, each on its own connection, as API
processes would be; a lost update (two purchases reading the same count) would show as a sixth."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone

from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.coupon.models import Coupon, CouponRedemption, SubscriptionDiscount
from creditflow.coupon.service import CouponInput, create_coupon
from creditflow.customer.service import create_customer
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice
from creditflow.kit.clock import FixedClock
from creditflow.kit.errors import Conflict
from creditflow.payment.sandbox import SandboxGateway
from creditflow.purchase.payment_method import set_payment_method
from creditflow.purchase.subscribe import subscribe

THREADS = 20
LIMIT = 5
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=timezone.utc)


def _run(work) -> list:
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS
    crashed: list = []

    def target(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            crashed.append(exc)

    pool = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=300)
    assert not crashed, crashed
    return results


def test_twenty_parallel_redemptions_of_a_coupon_limited_to_five_give_exactly_five(db):
    ctx = Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db), clock=FixedClock(NOW))
    with db.transaction() as session:
        create_coupon(ctx, session, CouponInput(code="FIVE", duration="once", percent_off=50,
                                                max_redemptions=LIMIT), NOW)
    customers = []
    for _ in range(THREADS):
        with db.transaction() as session:
            customers.append(create_customer(ctx, session, external_id=f"ext-{uuid.uuid4().hex[:12]}",
                                             email="someone@example.com").id)
        set_payment_method(ctx, customers[-1], "pm_card_ok")

    def work(i):
        try:
            subscribe(ctx, customers[i], "basic", "monthly", coupon="FIVE")
            return "discounted"
        except Conflict as exc:
            return exc.code

    outcomes = _run(work)

    assert sorted(outcomes) == ["coupon_exhausted"] * (THREADS - LIMIT) + ["discounted"] * LIMIT
    with db.transaction(readonly=True) as session:
        assert session.scalar(select(Coupon.times_redeemed).where(Coupon.code == "FIVE")) == LIMIT
        assert session.scalar(select(func.count()).select_from(CouponRedemption)
                              .where(CouponRedemption.released_at.is_(None))) == LIMIT
        assert session.scalar(select(func.count()).select_from(SubscriptionDiscount)) == LIMIT
        assert session.scalar(select(func.count()).select_from(Event).where(Event.type == "coupon.redeemed")) == LIMIT
        # Only the winners were invoiced (and each at half price); the refused bought nothing.
        assert sorted(session.scalars(select(Invoice.discount)).all()) == [450] * LIMIT
