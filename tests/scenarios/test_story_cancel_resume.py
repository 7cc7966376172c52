"""Cancel at the end of the term, and resume before it ends."""

from __future__ import annotations

import pytest
from scenario_kit import credits, utc

from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict
from creditflow.purchase.cancel import cancel_subscription
from creditflow.subscription.service import resume_subscription
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 3, 10, 10)
END = utc(2026, 4, 10, 10)


def test_cancelled_on_march_20th_keeps_access_until_april_10th_then_free(world):
    frank = world.shopper(START)
    sub = subscribe(world.ctx, frank.id, "standard", "monthly")

    frank.advance(utc(2026, 3, 20, 16))
    cancel_subscription(world.ctx, sub.id)
    stored = frank.sub()
    assert (stored.status, stored.cancel_at_period_end, stored.canceled_at) == ("active", True, utc(2026, 3, 20, 16))
    [canceled] = frank.events("subscription.canceled")
    assert canceled.data["ends_at"] == "2026-04-10T10:00:00Z"

    # Access, plan and credits continue until the term ends.
    frank.advance(utc(2026, 4, 10, 9, 59, 59))
    assert frank.plan() == "standard"
    assert frank.live() is not None
    assert frank.plan_credits() == credits(8000)

    frank.advance(END)
    ended = frank.sub()
    assert (ended.status, ended.ended_at, ended.ended_reason) == ("ended", END, "canceled")
    assert ended.due_at is None
    assert frank.live() is None
    assert frank.plan() == "free"
    assert frank.plan_credits() == Credits(0)
    [lot] = frank.lots()
    assert lot.expired_at == END
    assert frank.account().available == Credits(0)
    assert [e.type for e in frank.events("subscription.ended")] == ["subscription.ended"]

    # Nothing more is ever charged or invoiced.
    frank.advance(utc(2026, 8, 1))
    assert frank.charged() == [3000]
    assert len(frank.invoices()) == 1
    assert len(frank.attempts()) == 1
    frank.assert_ledger_balanced()

    with pytest.raises(Conflict) as too_late:
        world.ctx.db.run(lambda session: resume_subscription(world.ctx, session, sub.id))
    assert too_late.value.code == "subscription_ended"


def test_resume_before_the_end_keeps_it_renewing(world):
    gina = world.shopper(START)
    sub = subscribe(world.ctx, gina.id, "standard", "monthly")
    gina.advance(utc(2026, 3, 20, 16))
    cancel_subscription(world.ctx, sub.id)
    gina.advance(utc(2026, 4, 9))

    world.ctx.db.run(lambda session: resume_subscription(world.ctx, session, sub.id))

    stored = gina.sub()
    assert (stored.cancel_at_period_end, stored.canceled_at) == (False, None)
    gina.advance(END)
    assert gina.sub().status == "active"
    assert gina.sub().current_term_end == utc(2026, 5, 10, 10)
    assert gina.charged() == [3000, 3000]
    assert gina.plan_credits() == credits(8000)
    assert gina.event_types().count("subscription.resumed") == 1

    with pytest.raises(Conflict) as not_cancelling:
        world.ctx.db.run(lambda session: resume_subscription(world.ctx, session, sub.id))
    assert not_cancelling.value.code == "not_cancelling"


def test_cancelling_a_quarterly_plan_keeps_the_monthly_grants_until_the_term_ends(world):
    start = utc(2026, 1, 15, 10)
    hugo = world.shopper(start)
    sub = subscribe(world.ctx, hugo.id, "standard", "quarterly")
    hugo.advance(utc(2026, 1, 20))
    cancel_subscription(world.ctx, sub.id)

    hugo.advance(utc(2026, 5, 1))

    assert [lot.created_at for lot in hugo.lots()] == [start, utc(2026, 2, 15, 10), utc(2026, 3, 15, 10)]
    assert hugo.sub().ended_at == utc(2026, 4, 15, 10)
    assert hugo.charged() == [7650]
    assert hugo.plan() == "free"


def test_cancelling_twice_records_one_cancellation(world):
    ivan = world.shopper(START)
    sub = subscribe(world.ctx, ivan.id, "standard", "monthly")
    cancel_subscription(world.ctx, sub.id)
    cancel_subscription(world.ctx, sub.id)
    assert len(ivan.events("subscription.canceled")) == 1
