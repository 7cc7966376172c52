"""`creditflow catalog migrate` run twice at the same time (two operators, or a retry while the
first still runs), on SQLite and PostgreSQL: each subscription is moved once, with one event."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.customer.service import create_customer, create_test_clock
from creditflow.events.models import Event
from creditflow.kit.clock import FixedClock
from creditflow.payment.sandbox import SandboxGateway
from creditflow.purchase.payment_method import set_payment_method
from creditflow.purchase.subscribe import subscribe
from creditflow.subscription.models import Subscription
from creditflow.subscription.reprice import ALREADY, MOVED, cohort, move_to_price, price_move

START = datetime(2026, 3, 10, 10, tzinfo=timezone.utc)


def test_two_runs_at_once_move_each_subscription_once(db):
    ctx = Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db), clock=FixedClock(START))
    subs = []
    for _ in range(6):
        with db.transaction() as session:
            clock_id = create_test_clock(session, START, now=START).id
            customer_id = create_customer(ctx, session, external_id=f"m-{uuid.uuid4().hex[:8]}",
                                          email="m@example.com", test_clock=clock_id).id
        set_payment_method(ctx, customer_id, "pm_card_ok")
        subs.append(subscribe(ctx, customer_id, "basic", "monthly").id)
    move = price_move(ctx.catalog, "basic", "monthly", 1100, 10)

    def run() -> list[str]:
        with db.transaction(readonly=True) as session:
            ids = [sub_id for sub_id in cohort(session, "basic", "monthly") if sub_id in subs]
        outcomes = []
        for sub_id in ids:
            outcomes.append(db.run(lambda session: move_to_price(ctx, session, sub_id, move)))
        return outcomes

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.submit(run), pool.submit(run)
        outcomes = first.result() + second.result()

    assert sorted(outcomes) == sorted([MOVED] * 6 + [ALREADY] * 6)
    with db.transaction(readonly=True) as session:
        events = session.scalars(select(Event).where(Event.type == "subscription.price_changing"))
        moved = [event.data["subscription"] for event in events if event.data["subscription"] in subs]
        assert sorted(moved) == sorted(subs)
        prices = session.execute(select(Subscription.price, Subscription.next_price, func.count())
                                 .where(Subscription.id.in_(subs))
                                 .group_by(Subscription.price, Subscription.next_price)).all()
        assert prices == [(900, 1100, 6)]
