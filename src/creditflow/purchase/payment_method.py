"""Setting a customer's payment method: the gateway is asked to attach it first, outside any
transaction (it may be slow), then the customer row keeps what it answered."""

from __future__ import annotations

from creditflow.context import Context
from creditflow.customer.models import Customer
from creditflow.customer.service import customer_now, get_customer
from creditflow.events.outbox import record_event
from creditflow.kit.errors import InvalidRequest


def set_payment_method(ctx: Context, customer_id: str, token: str) -> Customer:
    """Attach the payment method the token names and make it the customer's default.

    Errors: InvalidRequest (token), NotFound (customer), PaymentFailed when the gateway refuses
    the method (nothing is changed)."""
    if not token or not isinstance(token, str):
        raise InvalidRequest("token is required", param="token")
    with ctx.db.transaction(readonly=True) as session:
        customer = get_customer(session, customer_id)
        gateway_customer_id, email = customer.gateway_customer_id, customer.email
    gateway_customer_id, method = ctx.gateway.attach_payment_method(
        customer_id=customer_id, gateway_customer_id=gateway_customer_id, email=email, token=token
    )

    def keep(session) -> Customer:
        customer = get_customer(session, customer_id, for_update=True)
        customer.gateway_customer_id = gateway_customer_id
        customer.payment_method = method
        record_event(session, "customer.payment_method_updated", customer_id=customer_id,
                     now=customer_now(ctx, session, customer_id),
                     data={"customer": customer_id, "payment_method": method})
        return customer

    return ctx.db.run(keep)
