"""What the billing page offers is what the use cases allow: for each state a subscription can
be in, `allowed_actions` (which the page renders) and the use case itself (which the API and
the page's buttons call) give the same verdict, with the same error code when they refuse.
And when plan credits next refresh, to how many, following a scheduled change."""

from __future__ import annotations

import pytest
from conftest import utc

from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict
from creditflow.purchase.cancel import cancel_subscription
from creditflow.purchase.change import change_subscription
from creditflow.purchase.top_up import purchase_top_up
from creditflow.subscription.options import allowed_actions, next_plan_grant, unused_value
from creditflow.subscription.repository import live_subscription
from creditflow.subscription.service import resume_subscription

START = utc(2026, 1, 31, 10)


def _subscribe(s, plan="standard", term="monthly") -> str:
    from creditflow.purchase.subscribe import subscribe

    return subscribe(s.ctx, s.customer_id, plan, term).id


def _state(story, name: str):
    """A customer on Standard monthly, brought to the state `name`."""
    s = story(START)
    sub_id = _subscribe(s)
    if name == "upgrade_scheduled":
        change_subscription(s.ctx, sub_id, plan="ultimate", term="monthly", timing="end_of_period")
    elif name == "downgrade_scheduled":
        change_subscription(s.ctx, sub_id, plan="basic", term="monthly", timing="end_of_period")
    elif name == "canceling":
        cancel_subscription(s.ctx, sub_id, at_period_end=True)
    elif name == "past_due":
        s.pay_with("pm_card_declined")
        s.advance(utc(2026, 2, 28, 10))
    return s, sub_id


ACTIONS = {
    "cancel": lambda s, sub_id: cancel_subscription(s.ctx, sub_id, at_period_end=True),
    "resume": lambda s, sub_id: s.ctx.db.run(lambda db: resume_subscription(s.ctx, db, sub_id)),
    "change": lambda s, sub_id: change_subscription(s.ctx, sub_id, plan="ultimate", term="monthly",
                                                    timing="immediate"),
    "end_of_period_change": lambda s, sub_id: change_subscription(s.ctx, sub_id, plan="basic", term="yearly",
                                                                  timing="end_of_period"),
    "top_up": lambda s, sub_id: purchase_top_up(s.ctx, s.customer_id, bundle="credits_1000"),
}

# What the page should say for each state (None: allowed), independently of the code under test.
EXPECTED = {
    "active": {"cancel": None, "resume": "not_cancelling", "change": None, "end_of_period_change": None,
               "top_up": None},
    "upgrade_scheduled": {"cancel": "scheduled_upgrade_pending", "resume": "not_cancelling", "change": None,
                          "end_of_period_change": None, "top_up": None},
    "downgrade_scheduled": {"cancel": None, "resume": "not_cancelling", "change": None,
                            "end_of_period_change": None, "top_up": None},
    "canceling": {"cancel": None, "resume": None, "change": None, "end_of_period_change": "subscription_canceling",
                  "top_up": None},
    "past_due": {"cancel": "subscription_not_active", "resume": "not_cancelling",
                 "change": "subscription_not_active", "end_of_period_change": "subscription_not_active",
                 "top_up": "subscription_required"},
}


@pytest.mark.parametrize("state", list(EXPECTED))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_page_and_the_use_case_agree(story, state, action):
    s, sub_id = _state(story, state)
    with s.db.transaction(readonly=True) as session:
        sub = live_subscription(session, s.customer_id)
        now = s.ctx.clock.now() if sub is None else _now(s, session)
        verdict = getattr(allowed_actions(sub, now), action)
    expected = EXPECTED[state][action]
    assert (verdict.refusal.code if verdict.refusal else None) == expected
    if expected is None:
        assert verdict.reason is None
        ACTIONS[action](s, sub_id)  # the use case does it
    else:
        assert verdict.reason and verdict.reason.endswith(".")  # a sentence for the customer
        with pytest.raises(Conflict) as refused:
            ACTIONS[action](s, sub_id)
        assert refused.value.code == expected


def _now(s, session):
    from creditflow.customer.service import customer_now

    return customer_now(s.ctx, session, s.customer_id)


def test_a_free_customer_can_only_subscribe(story):
    s = story(START)
    actions = allowed_actions(None, START)
    assert not actions.top_up.allowed and actions.top_up.refusal.code == "subscription_required"
    assert actions.top_up.reason == "Credit top-ups are for subscribers. Choose a plan to buy extra credits."
    with pytest.raises(Conflict) as refused:
        purchase_top_up(s.ctx, s.customer_id, bundle="credits_1000")
    assert refused.value.code == "subscription_required"
    assert not actions.cancel.allowed and not actions.resume.allowed and not actions.change.allowed


def test_resuming_is_refused_once_the_term_is_over_even_before_the_worker_ends_it(story):
    s, sub_id = _state(story, "canceling")
    sub = s.sub(sub_id)
    assert allowed_actions(sub, utc(2026, 2, 28, 9, 59)).resume.allowed
    assert allowed_actions(sub, utc(2026, 2, 28, 10)).resume.refusal.code == "subscription_ended"


# --- the next plan grant ------------------------------------------------------------------------


def test_the_next_grant_is_the_renewal_and_follows_a_scheduled_downgrade(story):
    s, sub_id = _state(story, "downgrade_scheduled")
    grant = next_plan_grant(s.ctx.catalog, s.sub(sub_id))
    assert (grant.at, grant.credits, grant.plan, grant.after_change) == (
        utc(2026, 2, 28, 10), Credits.parse("2000"), "basic", True)


def test_the_next_grant_of_a_longer_term_is_next_month_at_the_current_plan(story):
    s = story(START)
    sub_id = _subscribe(s, "standard", "quarterly")
    change_subscription(s.ctx, sub_id, plan="basic", term="quarterly", timing="end_of_period")
    grant = next_plan_grant(s.ctx.catalog, s.sub(sub_id))
    # The downgrade applies at the end of the quarter; February's grant is still Standard's.
    assert (grant.at, grant.credits, grant.plan, grant.after_change) == (
        utc(2026, 2, 28, 10), Credits.parse("8000"), "standard", False)


def test_no_grant_comes_after_a_cancelled_term_nor_while_past_due(story):
    s, sub_id = _state(story, "canceling")
    assert next_plan_grant(s.ctx.catalog, s.sub(sub_id)) is None
    s, sub_id = _state(story, "past_due")
    assert next_plan_grant(s.ctx.catalog, s.sub(sub_id)) is None
    assert next_plan_grant(s.ctx.catalog, None) is None


def test_the_unused_value_is_the_rest_of_the_term_prorated(story):
    s, sub_id = _state(story, "active")
    sub = s.sub(sub_id)
    assert unused_value(sub, START) == 3000
    assert unused_value(sub, utc(2026, 2, 14, 10)) == 1500  # 14 of 28 days left
    assert unused_value(sub, utc(2026, 2, 28, 10)) == 0
    assert unused_value(None, START) == 0
