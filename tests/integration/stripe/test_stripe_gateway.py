"""The real engine paying through the Stripe gateway, against localstripe (issue 7, points 1-2, 4).

Each test asserts both sides: what creditflow recorded, and what Stripe saw (PaymentIntents,
refunds), so that "charged exactly once" and "nothing changed at Stripe" are checked at Stripe.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from stripe_kit import CARD_DECLINED, CARD_DECLINES_CHARGES, CARD_OK, utc

from creditflow.wiring import build_context
from creditflow.purchase.top_up import purchase_top_up
from creditflow.purchase.payment_method import set_payment_method
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, InvalidRequest, PaymentFailed
from creditflow.payment.stripe_gateway import StripeGateway
from creditflow.purchase.refund import create_refund
from creditflow.purchase.change import change_subscription
from creditflow.subscription.change import preview_change
from creditflow.purchase.subscribe import subscribe
from creditflow.worker.runner import tick

START = utc(2026, 3, 10, 10)


# -- payment methods ----------------------------------------------------------------------------


def test_first_card_creates_one_stripe_customer_and_later_cards_reuse_it(stripe_story, stripe_admin):
    s = stripe_story(START, card=None)
    first = s.pay_with(CARD_OK)

    customer = s.customer()
    assert customer.gateway_customer_id.startswith("cus_")
    assert customer.payment_method == first
    assert customer.card == {"brand": "visa", "last4": CARD_OK[-4:], "exp_month": 12, "exp_year": 2034}
    at_stripe = stripe_admin.v1.customers.retrieve(customer.gateway_customer_id)
    assert at_stripe.metadata["creditflow_customer"] == s.customer_id
    assert at_stripe.email == customer.email
    assert at_stripe.invoice_settings.default_payment_method == first
    assert stripe_admin.v1.payment_methods.retrieve(first).customer == customer.gateway_customer_id

    second = s.pay_with(CARD_OK)
    assert s.customer().gateway_customer_id == customer.gateway_customer_id
    assert s.customer().payment_method == second
    assert stripe_admin.v1.payment_methods.retrieve(second).customer == customer.gateway_customer_id


def test_a_token_that_is_not_a_stripe_payment_method_is_refused(stripe_story):
    s = stripe_story(START, card=None)

    for token in ("pm_card_ok_but_unknown_to_stripe", "tok_visa"):
        with pytest.raises(InvalidRequest) as refused:
            set_payment_method(s.ctx, s.customer_id, token)
        assert refused.value.param == "token"
    assert s.customer().payment_method is None


def test_declined_card_is_refused_at_attach_and_nothing_is_charged(stripe_story):
    s = stripe_story(START, card=None)

    with pytest.raises(PaymentFailed) as refused:
        s.pay_with(CARD_DECLINED)
    assert (refused.value.code, refused.value.param) == ("payment_failed", "token")
    assert "declined" in refused.value.message
    assert s.customer().payment_method is None

    with pytest.raises(PaymentFailed):
        subscribe(s.ctx, s.customer_id, "standard", "monthly")
    assert [sub.status for sub in s.subscriptions()] == []

    # A good card afterwards goes to the Stripe customer the refused attach created.
    s.pay_with(CARD_OK)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    assert s.charged() == [3000]


# -- charges ------------------------------------------------------------------------------------


def test_subscribe_and_renew_charge_stripe_once_per_term(stripe_story):
    s = stripe_story(START)

    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")

    assert sub.status == "active"
    [intent] = s.intents()
    [attempt] = s.attempts()
    assert (intent.amount, intent.currency, intent.status) == (3000, "usd", "succeeded")
    assert intent.payment_method == s.customer().payment_method
    assert intent.metadata["creditflow_attempt"] == attempt.id
    assert (attempt.status, attempt.gateway_reference) == ("succeeded", intent.id)
    assert [(i.purpose, i.status, i.amount_paid) for i in s.invoices()] == [("subscription_create", "paid", 3000)]
    assert s.plan_credits() == 8000

    s.advance(utc(2026, 4, 10, 10))

    renewed = s.sub(sub.id)
    assert (renewed.status, renewed.current_term_end) == ("active", utc(2026, 5, 10, 10))
    assert s.charged() == [3000, 3000]
    assert [(i.purpose, i.status) for i in s.invoices()] == [("subscription_create", "paid"), ("renewal", "paid")]
    assert [a.gateway_reference for a in s.attempts()] == [pi.id for pi in s.intents()]


def test_card_declined_at_charge_time_starts_nothing(stripe_story):
    s = stripe_story(START, card=CARD_DECLINES_CHARGES)

    with pytest.raises(PaymentFailed) as declined:
        subscribe(s.ctx, s.customer_id, "standard", "monthly")

    assert declined.value.code == "payment_failed"
    assert declined.value.message == "Your card was declined."
    [attempt] = s.attempts()
    assert (attempt.status, attempt.failure_code) == ("failed", "card_declined")
    assert [i.status for i in s.invoices()] == ["void"]
    assert s.subscriptions() == []
    assert s.plan_credits() == 0
    [intent] = s.intents()
    assert intent.status == "requires_payment_method"
    assert s.charged() == []


def test_renewal_declined_at_stripe_goes_past_due_and_a_new_card_recovers_it(stripe_story):
    s = stripe_story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.pay_with(CARD_DECLINES_CHARGES)

    s.advance(utc(2026, 4, 10, 10))

    assert s.sub(sub.id).status == "past_due"
    assert s.plan_credits() == 0
    assert [pi.status for pi in s.intents()] == ["succeeded", "requires_payment_method"]

    s.advance(utc(2026, 4, 10, 18))
    s.pay_with(CARD_OK)  # retried at once with the new card, not at the first dunning retry

    recovered = s.sub(sub.id)
    assert (recovered.status, recovered.current_term_end) == ("active", utc(2026, 5, 10, 10))
    assert s.charged() == [3000, 3000]
    assert [a.created_at for a in s.attempts()][-1] == utc(2026, 4, 10, 18)
    assert s.plan_credits() == 8000


def test_immediate_upgrade_charges_the_prorated_amount_at_stripe(stripe_story):
    s = stripe_story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.advance(utc(2026, 3, 25, 12))

    quote = s.ctx.db.run(lambda session: preview_change(s.ctx, session, sub.id, plan="ultimate", term="monthly", timing="immediate"))
    changed = change_subscription(s.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate",
                                  quote=quote.id).subscription

    # $50 minus the unused 1,375,200 s of the 2,678,400 s Standard month (1540).
    assert quote.amount_due == 3460
    assert s.charged() == [3000, 3460]
    assert (changed.plan, changed.current_term_start) == ("ultimate", utc(2026, 3, 25, 12))
    assert s.plan_credits() == 16000
    assert s.attempts()[-1].gateway_reference == s.intents()[-1].id


def test_top_up_is_charged_at_stripe_and_its_refund_takes_the_unspent_credits_back(stripe_story):
    s = stripe_story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")

    top_up = purchase_top_up(s.ctx, s.customer_id, bundle="credits_1000")

    assert s.charged() == [3000, 1000]
    assert s.attempts()[-1].gateway_reference == s.intents()[-1].id
    assert s.lot(top_up.lot_id).remaining == Credits.whole(1000)

    create_refund(s.ctx, top_up.invoice_id, reason="bought by mistake")

    assert s.stripe_refunds(s.intents()[-1].id) == [1000]
    assert s.lot(top_up.lot_id).remaining == Credits(0)
    assert s.plan_credits() == 8000  # the subscription is not touched


# -- refunds ------------------------------------------------------------------------------------


def test_refund_of_a_first_purchase_goes_to_stripe_and_ends_the_subscription(stripe_story):
    s = stripe_story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()
    [intent] = s.intents()
    s.advance(utc(2026, 3, 11, 10))

    refund = create_refund(s.ctx, invoice.id, reason="changed their mind", actor="support@example.com")

    assert (refund.status, refund.amount) == ("succeeded", 3000)
    assert refund.gateway_reference.startswith("re_")
    assert s.stripe_refunds(intent.id) == [3000]
    [invoice] = s.invoices()
    assert (invoice.status, invoice.amount_refunded) == ("refunded", 3000)
    assert (s.sub(sub.id).status, s.sub(sub.id).ended_reason) == ("ended", "refunded")
    assert s.plan_credits() == 0


def test_partial_refunds_at_stripe_add_up_to_what_was_paid(stripe_story):
    s = stripe_story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()
    [intent] = s.intents()

    create_refund(s.ctx, invoice.id, amount=1000, reason="goodwill")

    assert s.stripe_refunds(intent.id) == [1000]
    [invoice] = s.invoices()
    assert (invoice.status, invoice.amount_refunded) == ("paid", 1000)
    assert s.sub(sub.id).status == "active"  # a partial refund leaves the subscription running

    create_refund(s.ctx, invoice.id, amount=2000, reason="the rest")

    assert s.stripe_refunds(intent.id) == [1000, 2000]
    [invoice] = s.invoices()
    assert (invoice.status, invoice.amount_refunded) == ("refunded", 3000)
    assert s.sub(sub.id).status == "ended"


def test_bad_refunds_change_nothing_here_or_at_stripe(stripe_story):
    s = stripe_story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [invoice] = s.invoices()
    [intent] = s.intents()

    with pytest.raises(InvalidRequest) as too_large:
        create_refund(s.ctx, invoice.id, amount=3001, reason="too much")
    assert (too_large.value.code, too_large.value.param) == ("amount_too_large", "amount")
    assert s.stripe_refunds(intent.id) == []
    assert s.refunds() == []
    [unchanged] = s.invoices()
    assert (unchanged.status, unchanged.amount_refunded) == ("paid", 0)
    assert s.sub(sub.id).status == "active"

    create_refund(s.ctx, invoice.id, reason="all of it")
    with pytest.raises(Conflict) as again:
        create_refund(s.ctx, invoice.id, reason="twice")
    assert (again.value.code, again.value.param) == ("already_refunded", "invoice")
    with pytest.raises(Conflict):
        create_refund(s.ctx, invoice.id, amount=1, reason="a little more")
    assert s.stripe_refunds(intent.id) == [3000]
    assert len(s.refunds()) == 1


# -- timeouts: unknown outcomes reconciled into exactly one charge --------------------------------


def test_first_purchase_whose_answer_is_lost_reconciles_to_one_charge_on_the_test_clock(stripe_story):
    s = stripe_story(START)
    s.network.lose_next("post", "/v1/payment_intents")

    with pytest.raises(PaymentFailed) as pending:
        subscribe(s.ctx, s.customer_id, "standard", "monthly")

    assert pending.value.code == "payment_pending"
    assert s.network.lost == ["POST /v1/payment_intents"]
    [attempt] = s.attempts()
    assert (attempt.status, attempt.gateway_reference, attempt.failure_code) == ("unknown", None, "timeout")
    [intent] = s.intents()  # Stripe did charge
    assert intent.status == "succeeded"
    with pytest.raises(Conflict):  # and nothing can charge again meanwhile
        subscribe(s.ctx, s.customer_id, "standard", "monthly")

    s.advance(START + timedelta(minutes=1))

    [attempt] = s.attempts()
    assert (attempt.status, attempt.gateway_reference) == ("succeeded", intent.id)
    [sub] = s.subscriptions()
    assert (sub.status, sub.current_term_start) == ("active", START)
    assert [(i.status, i.amount_paid) for i in s.invoices()] == [("paid", 3000)]
    assert s.plan_credits() == 8000
    assert s.charged() == [3000]
    assert len(s.intents()) == 1

    s.advance(START + timedelta(days=1))  # nothing more to reconcile
    assert len(s.intents()) == 1


def test_lost_answer_on_real_time_reconciles_through_the_worker(stripe_story):
    s = stripe_story(START, clock=False)
    s.network.lose_next("post", "/v1/payment_intents")
    with pytest.raises(PaymentFailed):
        subscribe(s.ctx, s.customer_id, "basic", "yearly")
    assert [a.status for a in s.attempts()] == ["unknown"]

    tick(s.ctx, START + timedelta(seconds=5))

    [attempt] = s.attempts()
    [intent] = s.intents()
    assert (attempt.status, attempt.gateway_reference) == ("succeeded", intent.id)
    assert [sub.status for sub in s.subscriptions()] == ["active"]
    assert s.charged() == [7560]


def test_request_that_never_reached_stripe_is_settled_as_not_charged(stripe_story):
    s = stripe_story(START)
    s.network.lose_next("post", "/v1/payment_intents", after=False)
    with pytest.raises(PaymentFailed):
        subscribe(s.ctx, s.customer_id, "standard", "monthly")

    # While the attempt is young, "not found" may only mean Stripe hasn't finished: keep waiting.
    s.advance(START + timedelta(minutes=1))
    assert [a.status for a in s.attempts()] == ["unknown"]

    s.advance(START + timedelta(minutes=11))

    [attempt] = s.attempts()
    assert (attempt.status, attempt.failure_code) == ("failed", "not_charged")
    assert s.intents() == []
    assert s.subscriptions() == []
    # The customer can simply buy again: one charge in all.
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    assert s.charged() == [3000]


def test_renewal_whose_answer_is_lost_reconciles_to_one_charge(stripe_story):
    s = stripe_story(START)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.network.lose_next("post", "/v1/payment_intents")

    # The renewal's answer is lost; the clock's next round of work (at the same instant)
    # reconciles it by looking the PaymentIntent up.
    s.advance(utc(2026, 4, 10, 10))

    assert s.network.lost == ["POST /v1/payment_intents"]
    first, second = s.intents()
    assert [(a.status, a.gateway_reference) for a in s.attempts()] == [("succeeded", first.id),
                                                                        ("succeeded", second.id)]
    renewed = s.sub(sub.id)
    assert (renewed.status, renewed.current_term_end) == ("active", utc(2026, 5, 10, 10))
    assert [i.status for i in s.invoices()] == ["paid", "paid"]
    assert s.plan_credits() == 8000
    assert s.charged() == [3000, 3000]

    s.advance(utc(2026, 4, 20, 10))
    assert len(s.intents()) == 2


def test_lookup_by_reference_and_by_attempt_agree(stripe_story):
    s = stripe_story(START)
    subscribe(s.ctx, s.customer_id, "standard", "monthly")
    [attempt] = s.attempts()

    by_reference = s.gateway.lookup(attempt.id, attempt.gateway_reference)
    by_attempt = s.gateway.lookup(attempt.id, None)

    assert by_reference == by_attempt
    assert (by_attempt.status, by_attempt.reference) == ("succeeded", attempt.gateway_reference)
    assert s.gateway.lookup("pay_never_sent", None).status == "not_found"


# -- configuration ------------------------------------------------------------------------------


def test_configuration_selects_the_stripe_gateway(db, localstripe, monkeypatch):
    monkeypatch.setenv("CREDITFLOW_GATEWAY", "stripe")
    monkeypatch.setenv("CREDITFLOW_STRIPE_API_KEY", "sk_test_from_env")
    monkeypatch.setenv("CREDITFLOW_STRIPE_API_BASE", localstripe)

    ctx = build_context(db)

    assert isinstance(ctx.gateway, StripeGateway)
    assert ctx.gateway.client.v1.customers.list(params={"limit": 1}).object == "list"  # it answers
