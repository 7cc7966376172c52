"""Plan changes with the sample catalog (issue 4): scenarios over the calendar, on SQLite and
PostgreSQL, asserting what was charged, when, and the credits after."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creditflow.customer.models import Customer
from creditflow.kit.errors import Conflict, Forbidden, InvalidRequest, PaymentFailed
from creditflow.subscription.change import cancel_scheduled_change, preview_change
from creditflow.purchase.change import change_subscription
from creditflow.purchase.cancel import cancel_subscription
from creditflow.purchase.subscribe import subscribe



def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


START = utc(2026, 3, 10, 10)


def test_immediate_upgrade_prorates_to_the_second(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 3, 25, 12))
    quote = _preview(s, sub, plan="ultimate", term="monthly")
    # $50 minus the unused 1,375,200 s of the 2,678,400 s Standard month: 3000 * ... = 1540.
    assert quote.amount_due == 5000 - 1540
    assert [line["amount"] for line in quote.lines if line["kind"] != "tax"] == [5000, -1540]
    assert quote.next_renewal_at == utc(2026, 4, 25, 12)
    assert quote.credits_after["subscription"] == "16000"

    changed = change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate",
                                  quote=quote.id).subscription
    assert s.charged() == [3000, 3460]
    assert changed.plan == "ultimate"
    assert changed.current_term_start == utc(2026, 3, 25, 12)
    assert changed.current_term_end == utc(2026, 4, 25, 12)
    assert s.plan_credits() == "16000"
    # The next renewal is on the new anchor, at the new price.
    s.advance(utc(2026, 4, 25, 12))
    assert s.charged() == [3000, 3460, 5000]
    assert s.sub(sub.id).current_term_end == utc(2026, 5, 25, 12)


def test_end_of_period_upgrade_then_cancelled_and_cancel_refused_while_scheduled(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 3, 25, 12))
    result = change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="end_of_period")
    assert result.replaced is None
    assert result.subscription.scheduled_plan == "ultimate"
    assert s.charged() == [3000]  # nothing charged now
    assert s.plan_credits() == "8000"

    with pytest.raises(Conflict) as refused:
        cancel_subscription(s.ctx, sub.id)
    assert refused.value.code == "scheduled_upgrade_pending"
    assert not s.sub(sub.id).cancel_at_period_end

    s.advance(utc(2026, 4, 1))
    _cancel_scheduled(s, sub)
    with pytest.raises(Conflict) as none_left:
        _cancel_scheduled(s, sub)
    assert none_left.value.code == "no_scheduled_change"
    s.advance(utc(2026, 4, 10, 10))
    assert s.charged() == [3000, 3000]  # Standard again
    assert s.sub(sub.id).plan == "standard"
    # Once no upgrade is scheduled, cancelling is accepted.
    assert cancel_subscription(s.ctx, sub.id).cancel_at_period_end


def test_end_of_period_upgrade_applies_at_renewal(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 3, 25, 12))
    change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="end_of_period")
    s.advance(utc(2026, 4, 10, 9, 59))
    assert s.charged() == [3000] and s.sub(sub.id).plan == "standard"
    s.advance(utc(2026, 4, 10, 10))
    assert s.charged() == [3000, 5000]
    after = s.sub(sub.id)
    assert (after.plan, after.scheduled_plan) == ("ultimate", None)
    assert after.current_term_end == utc(2026, 5, 10, 10)
    assert s.plan_credits() == "16000"


def test_downgrade_takes_effect_at_the_end_of_the_period(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "ultimate", "monthly")
    s.advance(utc(2026, 3, 20))
    with pytest.raises(Forbidden) as support_only:
        change_subscription(s.ctx, sub.id, plan="standard", term="monthly", timing="immediate")
    assert support_only.value.code == "support_only"
    change_subscription(s.ctx, sub.id, plan="standard", term="monthly", timing="end_of_period")
    s.advance(utc(2026, 4, 10, 9))
    assert s.sub(sub.id).plan == "ultimate" and s.plan_credits() == "16000"
    s.advance(utc(2026, 4, 10, 10))
    assert s.charged() == [5000, 3000]
    assert s.sub(sub.id).plan == "standard" and s.plan_credits() == "8000"


def test_a_new_scheduled_change_replaces_the_old_and_cancel_drops_a_downgrade(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "ultimate", "monthly")
    change_subscription(s.ctx, sub.id, plan="standard", term="monthly", timing="end_of_period")
    second = change_subscription(s.ctx, sub.id, plan="basic", term="monthly", timing="end_of_period")
    assert second.replaced == {"plan": "standard", "term": "monthly", "kind": "downgrade"}
    cancelled = cancel_subscription(s.ctx, sub.id)  # cancelling drops the scheduled downgrade
    assert cancelled.cancel_at_period_end and cancelled.scheduled_plan is None
    s.advance(utc(2026, 4, 10, 10))
    assert s.charged() == [5000]
    assert s.sub(sub.id).status == "ended"


def test_a_declined_upgrade_changes_nothing(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 3, 25, 12))
    s.pay_with("pm_card_declined")
    before = s.sub(sub.id)
    with pytest.raises(PaymentFailed) as declined:
        change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate")
    assert declined.value.code == "payment_failed"
    after = s.sub(sub.id)
    assert (after.plan, after.anchor, after.version) == (before.plan, before.anchor, before.version)
    assert after.lease_owner is None and after.due_at == utc(2026, 4, 10, 10)
    assert s.plan_credits() == "8000"
    assert s.charged() == [3000]
    assert s.invoices()[-1].status == "void"


def test_quotes_expire_and_go_stale(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    quote = _preview(s, sub, plan="ultimate", term="monthly")
    s.advance(START + timedelta(minutes=31))
    with pytest.raises(Conflict) as expired:
        change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate", quote=quote.id)
    assert expired.value.code == "quote_expired"
    fresh = _preview(s, sub, plan="ultimate", term="monthly")
    change_subscription(s.ctx, sub.id, plan="creator", term="monthly", timing="end_of_period")
    with pytest.raises(Conflict) as stale:
        change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate", quote=fresh.id)
    assert stale.value.code == "quote_stale"
    assert s.charged() == [3000]


def test_a_quote_fixes_the_amount_while_it_lives(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(START + timedelta(days=10))
    quote = _preview(s, sub, plan="ultimate", term="monthly")
    s.advance(START + timedelta(days=10, minutes=29))
    later = _preview(s, sub, plan="ultimate", term="monthly")
    assert later.amount_due != quote.amount_due  # the unused time shrank meanwhile

    change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate", quote=quote.id)

    assert s.charged() == [3000, quote.amount_due]
    [invoice] = [i for i in s.invoices() if i.purpose == "plan_change"]
    assert invoice.amount_paid == quote.amount_due
    assert [(line.kind, line.amount) for line in invoice.lines] == [
        (line["kind"], line["amount"]) for line in quote.lines if line["kind"] in ("new_plan", "unused_time")]
    # The new term starts when the change is made, not when it was quoted.
    assert s.sub(sub.id).current_term_start == START + timedelta(days=10, minutes=29)


def test_a_quote_goes_stale_when_the_account_balance_changes(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(START + timedelta(days=10))
    quote = _preview(s, sub, plan="ultimate", term="monthly")
    with s.db.transaction() as session:  # credit left by an earlier change, say
        session.get(Customer, s.customer_id).balance = 500
    with pytest.raises(Conflict) as stale:
        change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate", quote=quote.id)
    assert (stale.value.code, stale.value.param) == ("quote_stale", "quote")
    assert s.charged() == [3000]
    assert s.sub(sub.id).plan == "standard"


def test_bad_changes_are_refused_and_change_nothing(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    with pytest.raises(Conflict) as same:
        change_subscription(s.ctx, sub.id, plan="standard", term="monthly", timing="immediate")
    assert same.value.code == "same_plan"
    with pytest.raises(InvalidRequest) as unknown:
        change_subscription(s.ctx, sub.id, plan="platinum", term="monthly", timing="immediate")
    assert (unknown.value.code, unknown.value.param) == ("unknown_plan", "plan")
    with pytest.raises(InvalidRequest) as timing:
        change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="tomorrow")
    assert timing.value.param == "timing"
    assert s.charged() == [3000]
    assert s.sub(sub.id).version == 0


def test_upgrade_with_a_negative_remainder_goes_to_the_account_balance(story):
    s = story(utc(2026, 1, 1))
    sub = subscribe(s.ctx, s.customer_id, "ultimate", "yearly")  # 42000
    s.advance(utc(2026, 1, 2))
    # Creator monthly (25000) is a higher rank: an upgrade, though cheaper than the year left.
    quote = _preview(s, sub, plan="creator", term="monthly")
    assert quote.amount_due == 0
    change_subscription(s.ctx, sub.id, plan="creator", term="monthly", timing="immediate", quote=quote.id)
    unused = round(42000 * 364 / 365)
    assert s.customer().balance == unused - 25000
    assert s.charged() == [42000]
    # The balance pays the next renewal first.
    s.advance(utc(2026, 2, 2))
    assert s.charged() == [42000, 25000 - (unused - 25000)]
    assert s.customer().balance == 0


def test_support_immediate_downgrade_credits_the_balance(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "ultimate", "monthly")
    s.advance(utc(2026, 3, 25, 12))
    with pytest.raises(InvalidRequest) as no_reason:
        change_subscription(s.ctx, sub.id, plan="standard", term="monthly", timing="immediate", support=True)
    assert no_reason.value.param == "reason"
    change_subscription(s.ctx, sub.id, plan="standard", term="monthly", timing="immediate", support=True,
                        reason="customer asked on chat")
    unused = 2567  # 5000 * 1,375,200 / 2,678,400 = 2567.2
    assert s.charged() == [5000, 3000 - unused]
    assert s.sub(sub.id).plan == "standard" and s.plan_credits() == "8000"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=st.integers(min_value=0, max_value=31 * 86400 - 1),
       target=st.sampled_from([("ultimate", "monthly"), ("creator", "monthly"), ("standard", "yearly"),
                               ("ultimate", "quarterly")]))
def test_a_preview_equals_the_charge(sqlite_story, seconds, target):
    s = sqlite_story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(START + timedelta(seconds=seconds))
    quote = _preview(s, sub, plan=target[0], term=target[1])
    charged_before = sum(s.charged())
    change_subscription(s.ctx, sub.id, plan=target[0], term=target[1], timing="immediate", quote=quote.id)
    assert sum(s.charged()) - charged_before == quote.amount_due


def test_carry_over_policy_keeps_the_unused_plan_credits(story):
    from dataclasses import replace

    from creditflow.credits.spend import spend_credits

    s = story(START)
    policies = replace(s.ctx.catalog.policies, plan_credits_on_immediate_change="carry_over")
    s.ctx.catalog = replace(s.ctx.catalog, policies=policies)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    spend_credits(s.ctx, s.customer_id, amount="500.5", feature="standard_models", reference="job-1")
    s.advance(utc(2026, 3, 25, 12))
    quote = _preview(s, sub, plan="ultimate", term="monthly")
    assert quote.credits_after["subscription"] == "23499.5"  # 16,000 + the 7,499.5 left
    change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate", quote=quote.id)
    assert s.plan_credits() == "23499.5"


def test_every_change_scheduled_applied_or_cancelled_is_an_event(story):
    from sqlalchemy import select

    from creditflow.events.models import Event

    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    change_subscription(s.ctx, sub.id, plan="basic", term="monthly", timing="end_of_period")
    change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="end_of_period")
    _cancel_scheduled(s, sub)
    change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate")
    change_subscription(s.ctx, sub.id, plan="creator", term="monthly", timing="end_of_period")
    s.advance(utc(2026, 4, 10, 10))
    with s.db.transaction(readonly=True) as session:
        events = [(e.type, e.data) for e in session.scalars(
            select(Event).where(Event.customer_id == s.customer_id, Event.type.like("subscription.change%"))
            .order_by(Event.seq))]
    assert [(t, d.get("plan") or d["to"]["plan"]) for t, d in events] == [
        ("subscription.change_scheduled", "basic"),
        ("subscription.change_scheduled", "ultimate"),
        ("subscription.change_canceled", "ultimate"),
        ("subscription.changed", "ultimate"),  # immediate
        ("subscription.change_scheduled", "creator"),
        ("subscription.changed", "creator"),  # applied at the renewal
    ]
    assert events[1][1]["replaced"] == {"plan": "basic", "term": "monthly", "kind": "downgrade"}


def _preview(s, sub, *, plan: str, term: str, timing: str = "immediate"):
    return s.ctx.db.run(lambda session: preview_change(s.ctx, session, sub.id, plan=plan, term=term, timing=timing))


def _cancel_scheduled(s, sub):
    return s.ctx.db.run(lambda session: cancel_scheduled_change(s.ctx, session, sub.id))
