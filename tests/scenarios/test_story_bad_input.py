"""Bad input: a clear error with a stable code, and nothing changed (no invoice, no charge)."""

from __future__ import annotations

import pytest
from scenario_kit import utc

from creditflow.kit.errors import Conflict, InvalidRequest, NotFound, PaymentFailed
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 3, 10, 10)


@pytest.mark.parametrize(("plan", "term", "error", "code", "param"), [
    ("platinum", "monthly", InvalidRequest, "unknown_plan", "plan"),
    ("free", "monthly", InvalidRequest, "unknown_plan", "plan"),  # Free is not for sale
    ("", "monthly", InvalidRequest, "unknown_plan", "plan"),
    ("standard", "weekly", InvalidRequest, "unknown_term", "term"),
    ("standard", "Monthly", InvalidRequest, "unknown_term", "term"),
    ("standard", "", InvalidRequest, "unknown_term", "term"),
])
def test_unknown_plan_or_term_changes_nothing(world, plan, term, error, code, param):
    paula = world.shopper(START)
    before = world.counts()

    with pytest.raises(error) as refused:
        subscribe(world.ctx, paula.id, plan, term)

    assert (refused.value.code, refused.value.param) == (code, param)
    assert world.counts() == before


def test_unknown_customer_changes_nothing(world):
    world.shopper(START)
    before = world.counts()

    with pytest.raises(NotFound) as refused:
        subscribe(world.ctx, "cus_doesnotexist", "standard", "monthly")

    assert (refused.value.code, refused.value.param) == ("not_found", "customer")
    assert world.counts() == before


@pytest.mark.parametrize("state", ["active", "cancelling", "past_due", "incomplete"])
def test_a_second_live_subscription_is_refused_and_changes_nothing(world, state):
    token = {"past_due": "pm_card_ok_then_declined", "incomplete": "pm_card_timeout"}.get(state, "pm_card_ok")
    quinn = world.shopper(START, token)
    if state == "incomplete":
        with pytest.raises(PaymentFailed):
            subscribe(world.ctx, quinn.id, "standard", "monthly")
    else:
        sub = subscribe(world.ctx, quinn.id, "standard", "monthly")
        if state == "cancelling":
            from creditflow.purchase.cancel import cancel_subscription

            cancel_subscription(world.ctx, sub.id)
        if state == "past_due":
            quinn.advance(utc(2026, 4, 10, 10))
            assert quinn.sub().status == "past_due"
    quinn.pay_with("pm_card_ok")
    before = world.counts()

    for plan, term in (("standard", "monthly"), ("ultimate", "yearly")):
        with pytest.raises(Conflict) as refused:
            subscribe(world.ctx, quinn.id, plan, term)
        assert refused.value.code == "subscription_exists"

    assert world.counts() == before


def test_after_the_end_a_new_subscription_can_start(world):
    """The one-live-subscription rule doesn't count an ended subscription."""
    from creditflow.purchase.cancel import cancel_subscription

    rita = world.shopper(START)
    first = subscribe(world.ctx, rita.id, "standard", "monthly")
    cancel_subscription(world.ctx, first.id)
    rita.advance(utc(2026, 4, 11))
    second = subscribe(world.ctx, rita.id, "basic", "monthly")
    assert second.id != first.id
    assert [(s.status, s.plan) for s in rita.subscriptions()] == [("ended", "standard"), ("active", "basic")]
    assert second.anchor == utc(2026, 4, 11)
    assert rita.charged() == [3000, 900]


def test_a_declined_first_purchase_starts_nothing_and_says_why(world):
    sam = world.shopper(START, "pm_card_declined")
    with pytest.raises(PaymentFailed) as declined:
        subscribe(world.ctx, sam.id, "standard", "monthly")
    assert declined.value.code == "payment_failed"
    assert "declined" in declined.value.message
    assert sam.subscriptions() == []
    assert sam.lots() == []
    assert sam.charged() == []
    [invoice] = sam.invoices()
    assert invoice.status == "void"
    assert "subscription.created" not in sam.event_types()
    # The card fixed, buying works and the void invoice stays void.
    sam.pay_with("pm_card_ok")
    subscribe(world.ctx, sam.id, "standard", "monthly")
    assert [i.status for i in sam.invoices()] == ["void", "paid"]
    assert sam.charged() == [3000]


def test_no_payment_method_starts_nothing(world):
    tom = world.shopper(START, token=None)
    with pytest.raises(PaymentFailed) as refused:
        subscribe(world.ctx, tom.id, "standard", "monthly")
    assert refused.value.code == "payment_failed"
    assert tom.subscriptions() == []
    assert tom.sandbox_charges() == []
