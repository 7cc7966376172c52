"""Setting a customer's payment method: the gateway is asked to attach it first, outside any
transaction (it may be slow), then the customer row keeps what it answered. A subscription in
dunning is retried at once with the new method."""

from __future__ import annotations

from datetime import datetime

from creditflow.context import Context
from creditflow.purchase import renewal
from creditflow.subscription.models import Subscription
from creditflow.subscription.repository import live_subscription
from creditflow.customer.models import Customer
from creditflow.customer.service import customer_now, get_customer
from creditflow.events.outbox import record_event
from creditflow.kit.errors import InvalidRequest
from creditflow.payment.gateway import CardSetup


def set_payment_method(ctx: Context, customer_id: str, token: str) -> Customer:
    """Attach the payment method the token names and make it the customer's default.

    Errors: InvalidRequest (token), NotFound (customer), PaymentFailed when the gateway refuses
    the method (nothing is changed)."""
    if not token or not isinstance(token, str):
        raise InvalidRequest("token is required", param="token")
    with ctx.db.transaction(readonly=True) as session:
        customer = get_customer(session, customer_id)
        gateway_customer_id, email = customer.gateway_customer_id, customer.email
    attached = ctx.gateway.attach_payment_method(
        customer_id=customer_id, gateway_customer_id=gateway_customer_id, email=email, token=token
    )
    card = attached.card.as_dict() if attached.card is not None else None

    def keep(session) -> tuple[Customer, str | None, datetime]:
        # Locked in the order every purchase takes: the subscription, then the customer.
        sub = live_subscription(session, customer_id)
        if sub is not None:
            sub = session.get(Subscription, sub.id, with_for_update=True, populate_existing=True)
        customer = get_customer(session, customer_id, for_update=True)
        customer.gateway_customer_id = attached.gateway_customer_id
        customer.payment_method = attached.method_id
        customer.card = card
        now = customer_now(ctx, session, customer_id)
        record_event(session, "payment_method.updated", customer_id=customer_id, now=now,
                     data={"customer": customer_id, "payment_method": attached.method_id, "card": card})
        if sub is None or sub.status != "past_due" or sub.pending_invoice_id is None:
            return customer, None, now
        sub.next_retry_at = sub.due_at = now  # the open renewal is due again, now
        return customer, sub.id, now

    customer, in_dunning, now = ctx.db.run(keep)
    if in_dunning is not None:
        renewal.run_due(ctx, in_dunning, now)
    return customer


def start_card_setup(ctx: Context, customer_id: str) -> CardSetup:
    """With a gateway that collects cards in the browser (Stripe.js): what the page needs to
    set one up. The gateway's customer is created first if need be, and kept."""
    with ctx.db.transaction(readonly=True) as session:
        customer = get_customer(session, customer_id)
        gateway_customer_id, email = customer.gateway_customer_id, customer.email
    gateway_customer_id, setup = ctx.gateway.start_card_setup(
        customer_id=customer_id, gateway_customer_id=gateway_customer_id, email=email)

    def keep(session) -> None:
        customer = get_customer(session, customer_id, for_update=True)
        customer.gateway_customer_id = customer.gateway_customer_id or gateway_customer_id

    ctx.db.run(keep)
    return setup


def set_card_from_setup(ctx: Context, customer_id: str, setup_intent: str) -> Customer:
    """The card the browser set up (`start_card_setup`) becomes the customer's payment method,
    as `set_payment_method` makes it (a subscription in dunning is retried at once)."""
    with ctx.db.transaction(readonly=True) as session:
        gateway_customer_id = get_customer(session, customer_id).gateway_customer_id
    token = ctx.gateway.finish_card_setup(setup_intent=setup_intent, gateway_customer_id=gateway_customer_id)
    return set_payment_method(ctx, customer_id, token)
