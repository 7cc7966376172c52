"""A declined renewal, the retries 1, 3 and 7 days after it, and what follows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from scenario_kit import credits, utc

from creditflow.customer.models import Customer
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict
from creditflow.purchase.cancel import cancel_subscription
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 3, 10, 10)
RENEWAL = utc(2026, 4, 10, 10)
RETRIES = [RENEWAL + timedelta(days=d) for d in (1, 3, 7)]


def test_declined_renewal_is_retried_after_1_3_and_7_days_then_free(world):
    jack = world.shopper(START, "pm_card_ok_then_declined")
    sub = subscribe(world.ctx, jack.id, "standard", "monthly")
    assert jack.charged() == [3000]

    jack.advance(RENEWAL)

    stored = jack.sub()
    assert (stored.status, stored.past_due_since, stored.retry_count) == ("past_due", RENEWAL, 0)
    assert stored.next_retry_at == RETRIES[0]
    assert stored.due_at == RETRIES[0]
    assert stored.current_term_end == RENEWAL  # the paid term is over
    assert jack.plan() == "free"
    assert jack.plan_credits() == Credits(0)  # past due: no new credits, the old month expired
    assert len(jack.lots()) == 1
    renewal = jack.invoices()[-1]
    assert (renewal.purpose, renewal.status, renewal.total) == ("renewal", "open", 3000)
    assert jack.attempt_times() == [START, RENEWAL]
    assert [e.type for e in jack.events() if e.type.startswith("subscription.")] == [
        "subscription.created", "subscription.past_due"]

    with pytest.raises(Conflict):  # a past_due subscription can't be cancelled at the period end
        cancel_subscription(world.ctx, sub.id)

    for n, retry_at in enumerate(RETRIES):
        jack.advance(retry_at - timedelta(seconds=1))
        assert jack.attempt_times() == [START, RENEWAL] + RETRIES[:n]
        jack.advance(retry_at)
        assert jack.attempt_times() == [START, RENEWAL] + RETRIES[:n + 1]
        if n < len(RETRIES) - 1:
            stored = jack.sub()
            assert (stored.status, stored.retry_count, stored.next_retry_at) == ("past_due", n + 1, RETRIES[n + 1])

    ended = jack.sub()
    assert (ended.status, ended.ended_reason, ended.ended_at) == ("ended", "payment_failed", RETRIES[-1])
    assert jack.live() is None
    assert jack.plan() == "free"
    assert jack.invoices()[-1].status == "void"
    assert [a.status for a in jack.attempts()] == ["succeeded", "failed", "failed", "failed", "failed"]
    # Every retry reached the card and was declined; only the first purchase was taken.
    assert [c.status for c in jack.sandbox_charges()] == ["succeeded", "failed", "failed", "failed", "failed"]
    assert jack.charged() == [3000]
    assert len(jack.events("invoice.payment_failed")) == 4
    assert len(jack.lots()) == 1
    assert jack.plan_credits() == Credits(0)

    # Nothing more after the end.
    jack.advance(utc(2026, 7, 1))
    assert len(jack.attempts()) == 5
    assert len(jack.invoices()) == 2
    jack.assert_ledger_balanced()


@pytest.mark.parametrize("succeeding_retry", [0, 2])
def test_a_retry_that_succeeds_makes_it_active_again_with_the_anchor_unchanged(world, succeeding_retry):
    kate = world.shopper(START, "pm_card_ok_then_declined")
    sub = subscribe(world.ctx, kate.id, "standard", "monthly")
    kate.advance(RENEWAL)
    assert kate.sub().status == "past_due"

    retry_at = RETRIES[succeeding_retry]
    kate.advance(retry_at - timedelta(hours=2))
    with world.ctx.db.transaction() as session:  # the bank stops declining the same card
        session.get(Customer, kate.id).payment_method = "pm_card_ok"
    assert kate.charged() == [3000]  # nothing is charged until the retry is due
    kate.advance(retry_at)

    stored = kate.sub()
    assert stored.id == sub.id
    assert stored.status == "active"
    assert stored.anchor == START
    assert (stored.current_term_start, stored.current_term_end) == (RENEWAL, utc(2026, 5, 10, 10))
    assert (stored.past_due_since, stored.next_retry_at, stored.retry_count) == (None, None, 0)
    assert stored.due_at == utc(2026, 5, 10, 10)
    assert kate.charged() == [3000, 3000]
    assert kate.attempt_times() == [START, RENEWAL] + RETRIES[:succeeding_retry + 1]
    renewal = kate.invoices()[-1]
    assert (renewal.status, renewal.paid_at) == ("paid", retry_at)
    assert (renewal.period_start, renewal.period_end) == (RENEWAL, utc(2026, 5, 10, 10))
    # Credits for the rest of the month that was paid for, expiring on the anchor's day.
    new_lot = kate.lots()[-1]
    assert (new_lot.created_at, new_lot.granted, new_lot.expires_at) == (retry_at, credits(8000),
                                                                         utc(2026, 5, 10, 10))
    assert kate.plan_credits() == credits(8000)
    assert kate.plan() == "standard"
    [renewed] = kate.events("subscription.renewed")
    assert renewed.data["after_dunning"] is True

    # The next renewal is on the anchor's calendar, not a month after the retry.
    kate.advance(utc(2026, 5, 10, 10))
    assert kate.charged() == [3000, 3000, 3000]
    assert kate.sub().current_term_end == utc(2026, 6, 10, 10)
    kate.assert_ledger_balanced()


def test_declined_card_on_a_quarterly_plan_still_grants_nothing_while_past_due(world):
    start = utc(2026, 1, 15, 10)
    leo = world.shopper(start, "pm_card_ok_then_declined")
    subscribe(world.ctx, leo.id, "standard", "quarterly")
    leo.advance(utc(2026, 4, 15, 10))
    assert leo.sub().status == "past_due"
    leo.advance(utc(2026, 4, 20, 10))
    assert [lot.created_at for lot in leo.lots()] == [start, utc(2026, 2, 15, 10), utc(2026, 3, 15, 10)]
    assert leo.plan_credits() == Credits(0)
    leo.advance(utc(2026, 4, 22, 10))
    assert leo.sub().status == "ended"
    assert leo.charged() == [7650]


def test_a_new_card_while_past_due_retries_the_renewal_at_once_and_keeps_the_anchor(world):
    kim = world.shopper(START, "pm_card_ok_then_declined")
    subscribe(world.ctx, kim.id, "standard", "monthly")
    kim.advance(RENEWAL + timedelta(hours=12))
    assert kim.sub().status == "past_due" and kim.plan_credits() == Credits(0)

    kim.pay_with("pm_card_ok")

    stored = kim.sub()
    assert (stored.status, stored.past_due_since, stored.next_retry_at, stored.retry_count) == (
        "active", None, None, 0)
    # The term paid for is the one that was due: the anchor (the 10th) is kept.
    assert (stored.current_term_start, stored.current_term_end) == (RENEWAL, utc(2026, 5, 10, 10))
    assert stored.due_at == utc(2026, 5, 10, 10)
    assert kim.attempt_times() == [START, RENEWAL, RENEWAL + timedelta(hours=12)]
    assert kim.invoices()[-1].status == "paid" and kim.charged() == [3000, 3000]
    assert kim.plan() == "standard" and kim.plan_credits() == credits(8000)
    # Nothing is left for the schedule to retry.
    kim.advance(RETRIES[-1])
    assert len(kim.attempts()) == 3


def test_a_new_card_that_is_declined_too_leaves_the_retry_schedule_as_it_was(world):
    lee = world.shopper(START, "pm_card_ok_then_declined")
    subscribe(world.ctx, lee.id, "standard", "monthly")
    lee.advance(RETRIES[1] + timedelta(hours=1))  # two tries failed; the last is on day 7
    assert (lee.sub().status, lee.sub().retry_count) == ("past_due", 2)

    lee.pay_with("pm_card_declined")

    stored = lee.sub()
    assert (stored.status, stored.retry_count, stored.next_retry_at) == ("past_due", 2, RETRIES[2])
    assert lee.attempt_times() == [START, RENEWAL] + RETRIES[:2] + [RETRIES[1] + timedelta(hours=1)]
    lee.advance(RETRIES[2])  # the scheduled last try still happens, then the subscription ends
    assert lee.attempt_times()[-1] == RETRIES[2]
    assert (lee.sub().status, lee.sub().ended_reason) == ("ended", "payment_failed")
