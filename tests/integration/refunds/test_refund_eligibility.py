"""The refund policy on real purchases and real spends, as `eligibility` answers it for
`GET /v1/invoices/{id}/refund_eligibility`; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from refund_kit import utc

from creditflow.credits.spend import refund_spend
from creditflow.purchase.refund import create_refund
from creditflow.refund.service import eligibility
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 3, 10, 10)


@pytest.mark.parametrize(("spent", "eligible"), [("250", True), ("300", True), ("301", False)])
def test_monthly_first_purchase_asked_on_the_third_day(story, spent, eligible):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 3, 11, 15))
    s.spend(spent)
    s.advance(utc(2026, 3, 13, 9))
    [invoice] = s.invoices()

    answer = s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id))

    assert answer.eligible is eligible, answer.reason
    if not eligible:
        assert answer.reason == "301 credits were spent since the purchase; at most 300 are allowed."


def test_credits_spent_in_several_jobs_add_up(story):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    for amount in ("100", "150.5", "50.5"):
        s.spend(amount)
    [invoice] = s.invoices()
    assert s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id)).reason == (
        "301 credits were spent since the purchase; at most 300 are allowed.")


def test_the_monthly_window_closes_after_three_days(story):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()
    s.advance(utc(2026, 3, 13, 9, 59, 59))
    assert s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id)).eligible
    s.advance(utc(2026, 3, 13, 10))
    answer = s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id))
    assert (answer.eligible, answer.reason) == (False, "The 3-day refund window ended on 2026-03-13 10:00 UTC.")


def test_yearly_first_purchase_with_120_spent_is_eligible_on_day_5_not_on_day_6(story):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "yearly")
    s.spend("120")
    [invoice] = s.invoices()

    s.advance(START + timedelta(days=4, hours=12))  # day 5
    assert s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id)).eligible
    s.advance(START + timedelta(days=5))  # day 6 begins
    assert not s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id)).eligible
    s.advance(START + timedelta(days=5, hours=12))
    assert not s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id)).eligible


def test_a_renewal_is_not_eligible_but_support_can_still_refund_it(story):
    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 4, 10, 11))
    renewal = s.invoices("renewal")[0]

    answer = s.ctx.db.read(lambda session: eligibility(s.ctx, session, renewal.id))
    assert (answer.eligible, answer.reason) == (False, "Renewals are not refundable under the refund policy.")

    refund = create_refund(s.ctx, renewal.id, reason="support: charged the day they asked to cancel")
    assert refund.status == "succeeded"
    assert s.sub(sub.id).status == "ended"


def test_credits_given_back_for_a_failed_job_do_not_count(story):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    failed_job = s.spend("280")
    s.spend("100")
    [invoice] = s.invoices()
    assert not s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id)).eligible  # 380 spent

    refund_spend(s.ctx, s.customer_id, reference=failed_job)

    assert s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id)).reason == "First purchase within 3 days with 100 credits spent."


def test_a_refund_of_a_spend_made_before_the_purchase_does_not_lower_the_count(story):
    s = story(utc(2026, 3, 9, 10))
    before = s.spend("50")  # on Free credits, the day before buying
    s.advance(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.spend("260")
    s.spend("60")
    refund_spend(s.ctx, s.customer_id, reference=before)  # after the purchase
    [invoice] = s.invoices()

    assert s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice.id)).reason == (
        "320 credits were spent since the purchase; at most 300 are allowed.")


def test_only_the_customers_first_purchase_of_a_plan_is_eligible(story):
    s = story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [first] = s.invoices()
    create_refund(s.ctx, first.id, reason="refunded under the policy")
    assert s.ctx.db.read(lambda session: eligibility(s.ctx, session, first.id)).reason == "The invoice has already been refunded."

    s.advance(utc(2026, 3, 11, 10))
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    second = s.invoices("subscription_create")[-1]

    answer = s.ctx.db.read(lambda session: eligibility(s.ctx, session, second.id))
    assert (answer.eligible, answer.reason) == (False, "Only the customer's first purchase of a plan is refundable.")


def test_top_ups_and_plan_changes_are_not_eligible(story):
    from creditflow.purchase.top_up import purchase_top_up
    from creditflow.purchase.change import change_subscription

    s = story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    top_up = purchase_top_up(s.ctx, s.customer_id, bundle="credits_1000")
    change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate")
    change = s.invoices("plan_change")[0]

    for invoice_id in (top_up.invoice_id, change.id):
        answer = s.ctx.db.read(lambda session: eligibility(s.ctx, session, invoice_id))
        assert (answer.eligible, answer.reason) == (
            False, "Only the first purchase of a plan is refundable under the refund policy.")
