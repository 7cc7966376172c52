"""What a paid or failed invoice leads to, by the invoice's purpose: one explicit table.

A handler runs in the transaction that records the payment's outcome, so a charge and its
effect (a started subscription, a new term, granted credits) commit together. Every handler
also settles the invoice's coupon: a paid charge moves the subscription's discount on, a
purchase undone (its invoice void) gives its coupon use back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.coupon.service import on_invoice_paid, release_for_invoice
from creditflow.credits.topups import on_top_up_failed, on_top_up_paid
from creditflow.invoicing.models import Invoice
from creditflow.payment.models import PaymentAttempt
from creditflow.subscription.change import on_change_failed, on_change_paid
from creditflow.subscription.renewal import on_renewal_failed, on_renewal_paid
from creditflow.subscription.service import on_subscribe_failed, on_subscribe_paid

Handler = Callable[[Context, Session, Invoice, PaymentAttempt | None, datetime], None]


@dataclass(frozen=True)
class Fulfilment:
    on_paid: Handler
    on_failed: Handler


def _with_coupon(on_paid: Handler, on_failed: Handler) -> Fulfilment:
    def paid(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None, now: datetime) -> None:
        on_paid(ctx, session, invoice, attempt, now)
        on_invoice_paid(session, invoice, now)

    def failed(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
               now: datetime) -> None:
        on_failed(ctx, session, invoice, attempt, now)
        if invoice.status == "void":
            release_for_invoice(session, invoice.id, now)

    return Fulfilment(paid, failed)


FULFILMENT: dict[str, Fulfilment] = {
    "subscription_create": _with_coupon(on_subscribe_paid, on_subscribe_failed),
    "renewal": _with_coupon(on_renewal_paid, on_renewal_failed),
    "plan_change": _with_coupon(on_change_paid, on_change_failed),
    "top_up": _with_coupon(on_top_up_paid, on_top_up_failed),
}
