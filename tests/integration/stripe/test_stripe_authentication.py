"""3-D Secure with the Stripe gateway at localstripe: an on-session purchase waits for the
cardholder (a PaymentIntent in requires_action) and completes with that same PaymentIntent once
authenticated; an off-session renewal with such a card is dunned with an
`invoice.payment_action_required` event."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select
from stripe_kit import CARD_OK, utc

from creditflow.events.models import Event
from creditflow.purchase import checkout
from creditflow.purchase.checkout import AuthenticationRequired
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 3, 10, 10)
CARD_3DS = "4000002500003155"


def test_an_on_session_purchase_waits_for_3d_secure_and_completes_with_the_same_payment(stripe_story, localstripe):
    s = stripe_story(START, card=CARD_3DS)
    with pytest.raises(AuthenticationRequired) as waiting:
        subscribe(s.ctx, s.customer_id, "standard", "monthly")
    assert [(pi.amount, pi.status) for pi in s.intents()] == [(3000, "requires_action")]
    assert [sub.status for sub in s.subscriptions()] == ["incomplete"]  # nothing started

    with s.db.transaction(readonly=True) as session:
        attempt = checkout.waiting_attempt(session, waiting.value.invoice_id)
    secret = s.gateway.authentication_secret(attempt.gateway_reference)
    answer = requests.post(f"{localstripe}/v1/payment_intents/{attempt.gateway_reference}/_authenticate?success=true",
                           json={"key": "pk_test_x", "client_secret": secret}, timeout=10)
    assert answer.json()["status"] == "succeeded"  # what Stripe.js does in the browser

    assert checkout.finish_authentication(s.ctx, attempt.id, START).status == "paid"
    assert checkout.finish_authentication(s.ctx, attempt.id, START).status == "paid"  # asked again: nothing more
    assert [sub.status for sub in s.subscriptions()] == ["active"]
    assert s.charged() == [3000]
    assert len(s.intents()) == 1


def test_an_off_session_renewal_needing_3d_secure_is_dunned_with_the_event(stripe_story):
    s = stripe_story(START, card=CARD_OK)
    sub = subscribe(s.ctx, s.customer_id, "standard", "monthly")
    s.pay_with(CARD_3DS)

    s.advance(utc(2026, 4, 10, 10))

    assert s.sub(sub.id).status == "past_due"
    assert [(a.status, a.failure_code) for a in s.attempts()][-1] == ("failed", "authentication_required")
    assert s.charged() == [3000]
    with s.db.transaction(readonly=True) as session:
        events = list(session.scalars(select(Event).where(Event.customer_id == s.customer_id,
                                                          Event.type == "invoice.payment_action_required")))
    assert [e.data["off_session"] for e in events] == [True]
