"""Subscribe, cancel, resume and renew for real-time customers, with the worker's `tick(ctx, now)`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from engine_kit import utc

from creditflow.customer.service import create_customer, create_test_clock
from creditflow.purchase.payment_method import set_payment_method
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, Forbidden
from creditflow.purchase.cancel import cancel_subscription
from creditflow.subscription.service import resume_subscription
from creditflow.purchase.subscribe import subscribe
from creditflow.worker.runner import tick
from creditflow.worker.testclock import advance_test_clock

START = utc(2026, 3, 10, 10)
RENEWAL = utc(2026, 4, 10, 10)


def test_tick_renews_at_the_boundary_and_only_once(engine):
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    assert sub.anchor == START  # "now" is the context's clock for a real-time customer

    tick(engine.ctx, RENEWAL - timedelta(seconds=1))
    assert engine.charged(cus) == [3000]
    assert len(engine.invoices(cus)) == 1

    tick(engine.ctx, RENEWAL)
    assert engine.charged(cus) == [3000, 3000]
    stored = engine.sub(sub.id)
    assert (stored.status, stored.current_term_start, stored.current_term_end) == (
        "active", RENEWAL, utc(2026, 5, 10, 10))
    assert stored.due_at == utc(2026, 5, 10, 10)
    assert stored.lease_owner is None
    assert [lot.created_at for lot in engine.lots(cus)] == [START, RENEWAL]

    # Ticking again, at the same instant or later in the month, does nothing more.
    tick(engine.ctx, RENEWAL)
    tick(engine.ctx, utc(2026, 5, 10, 9))
    assert engine.charged(cus) == [3000, 3000]
    assert len(engine.invoices(cus)) == 2
    assert engine.event_count("subscription.renewed", cus) == 1


def test_tick_runs_the_monthly_grants_of_a_quarterly_plan(engine):
    cus = engine.customer()
    subscribe(engine.ctx, cus, "standard", "quarterly")
    tick(engine.ctx, utc(2026, 4, 10, 10))
    tick(engine.ctx, utc(2026, 5, 10, 10))
    assert engine.charged(cus) == [7650]
    lots = engine.lots(cus)
    assert [lot.created_at for lot in lots] == [START, utc(2026, 4, 10, 10), utc(2026, 5, 10, 10)]
    assert [lot.expired_at for lot in lots] == [utc(2026, 4, 10, 10), utc(2026, 5, 10, 10), None]
    tick(engine.ctx, utc(2026, 6, 10, 10))
    assert engine.charged(cus) == [7650, 7650]


def test_a_worker_that_was_down_catches_up_in_calendar_order(engine):
    """Two boundaries passed while no worker ran: both renewals are charged, each for its own
    period, with no gap and no overlap."""
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")

    tick(engine.ctx, utc(2026, 5, 20))

    periods = [(i.period_start, i.period_end) for i in engine.invoices(cus)]
    assert periods == [(START, RENEWAL), (RENEWAL, utc(2026, 5, 10, 10)),
                       (utc(2026, 5, 10, 10), utc(2026, 6, 10, 10))]
    assert engine.charged(cus) == [3000, 3000, 3000]
    assert engine.sub(sub.id).current_term_end == utc(2026, 6, 10, 10)
    live = [lot for lot in engine.lots(cus) if lot.expired_at is None]
    assert [(lot.remaining, lot.expires_at) for lot in live] == [(Credits.whole(8000), utc(2026, 6, 10, 10))]


def test_cancel_then_tick_at_the_end_ends_it_and_charges_nothing(engine):
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    engine.at(utc(2026, 3, 20))
    cancel_subscription(engine.ctx, sub.id)
    assert engine.sub(sub.id).canceled_at == utc(2026, 3, 20)

    tick(engine.ctx, RENEWAL - timedelta(seconds=1))
    assert engine.sub(sub.id).status == "active"
    tick(engine.ctx, RENEWAL)

    ended = engine.sub(sub.id)
    assert (ended.status, ended.ended_at, ended.due_at) == ("ended", RENEWAL, None)
    assert engine.charged(cus) == [3000]
    assert all(lot.expired_at == RENEWAL for lot in engine.lots(cus))
    tick(engine.ctx, utc(2026, 9, 1))
    assert engine.charged(cus) == [3000]
    assert len(engine.invoices(cus)) == 1


def test_resume_then_tick_renews(engine):
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    cancel_subscription(engine.ctx, sub.id)
    engine.at(utc(2026, 4, 1))
    engine.ctx.db.run(lambda session: resume_subscription(engine.ctx, session, sub.id))
    tick(engine.ctx, RENEWAL)
    assert engine.sub(sub.id).status == "active"
    assert engine.charged(cus) == [3000, 3000]


def test_ending_at_once_is_for_support_only(engine):
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    with pytest.raises(Forbidden) as refused:
        cancel_subscription(engine.ctx, sub.id, at_period_end=False)
    assert refused.value.code == "support_only"
    assert engine.sub(sub.id).status == "active"

    engine.at(utc(2026, 3, 15))
    cancel_subscription(engine.ctx, sub.id, at_period_end=False, support=True)
    ended = engine.sub(sub.id)
    assert (ended.status, ended.ended_at, ended.ended_reason) == ("ended", utc(2026, 3, 15), "canceled_by_support")
    assert all(lot.expired_at == utc(2026, 3, 15) for lot in engine.lots(cus))
    with pytest.raises(Conflict) as again:
        cancel_subscription(engine.ctx, sub.id)
    assert again.value.code == "subscription_ended"
    tick(engine.ctx, RENEWAL)
    assert engine.charged(cus) == [3000]
    assert len(engine.invoices(cus)) == 1


def test_tick_leaves_test_clock_customers_alone_and_the_clock_leaves_real_time_alone(engine):
    real = engine.customer()
    real_sub = subscribe(engine.ctx, real, "standard", "monthly")
    with engine.db.transaction() as session:
        clock_id = create_test_clock(session, START, now=START).id
        simulated = create_customer(engine.ctx, session, external_id="sim", email="sim@example.com",
                                    test_clock=clock_id).id
    set_payment_method(engine.ctx, simulated, "pm_card_ok")
    sim_sub = subscribe(engine.ctx, simulated, "standard", "monthly")

    tick(engine.ctx, utc(2026, 4, 20))
    assert engine.charged(real) == [3000, 3000]
    assert engine.charged(simulated) == [3000]
    assert engine.sub(sim_sub.id).current_term_end == RENEWAL

    engine.at(utc(2026, 4, 20))
    advance_test_clock(engine.ctx, clock_id, utc(2026, 6, 1))
    assert engine.charged(simulated) == [3000, 3000, 3000]
    assert engine.charged(real) == [3000, 3000]
    assert engine.sub(real_sub.id).current_term_end == utc(2026, 5, 10, 10)


def test_declined_renewal_goes_through_dunning_by_tick(engine):
    cus = engine.customer("pm_card_ok_then_declined")
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    tick(engine.ctx, RENEWAL)
    assert engine.sub(sub.id).status == "past_due"
    for days in (1, 3):
        tick(engine.ctx, RENEWAL + timedelta(days=days) - timedelta(seconds=1))
        tick(engine.ctx, RENEWAL + timedelta(days=days))
        assert engine.sub(sub.id).status == "past_due"
    tick(engine.ctx, RENEWAL + timedelta(days=7))
    assert [a.created_at for a in engine.attempts(cus)] == [
        START, RENEWAL, RENEWAL + timedelta(days=1), RENEWAL + timedelta(days=3), RENEWAL + timedelta(days=7)]
    assert engine.sub(sub.id).status == "ended"
    assert engine.charged(cus) == [3000]


def test_resume_is_refused_once_the_term_has_ended_even_before_the_worker_ran(engine):
    """A cancellation can be undone until the term ends, not after, even if the worker is late."""
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    cancel_subscription(engine.ctx, sub.id)
    engine.at(RENEWAL + timedelta(minutes=1))  # the term is over; no worker has run yet

    with pytest.raises(Conflict) as refused:
        engine.ctx.db.run(lambda session: resume_subscription(engine.ctx, session, sub.id))

    assert refused.value.code == "subscription_ended"
    assert engine.sub(sub.id).cancel_at_period_end is True
    tick(engine.ctx, RENEWAL + timedelta(minutes=1))
    assert engine.sub(sub.id).status == "ended"
    assert engine.charged(cus) == [3000]
