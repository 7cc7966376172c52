"""Top-up bundles: charged first (`purchase.top_up`), credited only once the payment succeeded.

The credits are granted by `on_top_up_paid`, in the transaction that records the successful
payment, as a never-expiring `top_up` lot keyed by the invoice, so a payment settled twice (or
reconciled later by the worker) grants once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.credits.grants import grant_top_up, top_up_grant_key
from creditflow.credits.models import CreditLot
from creditflow.events.outbox import record_event
from creditflow.invoicing.models import Invoice
from creditflow.kit.credits import Credits
from creditflow.kit.errors import PaymentFailed
from creditflow.payment.models import PaymentAttempt

PURPOSE = "top_up"


@dataclass(frozen=True)
class TopUp:
    customer_id: str
    bundle: str
    credits: Credits
    invoice_id: str
    lot_id: str
    amount_paid: int
    currency: str
    created_at: datetime
    replayed: bool = False


def top_up_of(session: Session, invoice: Invoice, *, replayed: bool = False) -> TopUp:
    """What a top-up invoice bought, or why it bought nothing yet."""
    if invoice.status in ("paid", "refunded"):
        lot = session.scalar(select(CreditLot).where(CreditLot.grant_key == top_up_grant_key(invoice.id)))
        return TopUp(invoice.customer_id, invoice.details["bundle"], lot.granted, invoice.id, lot.id,
                     invoice.amount_paid, invoice.currency, invoice.created_at, replayed)
    if invoice.status == "void":
        raise PaymentFailed("The payment for the top-up failed; nothing was charged or granted.",
                            code="payment_failed")
    raise PaymentFailed(
        "The payment's outcome is not known yet; the credits are granted if the charge went through. "
        "Nothing will be charged twice.", code="payment_pending")


def on_top_up_paid(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
                   now: datetime) -> None:
    credits = Credits.parse(invoice.details["credits"])
    lot_id = grant_top_up(ctx, session, customer_id=invoice.customer_id, invoice_id=invoice.id, credits=credits,
                          now=now)
    record_event(session, "top_up.purchased", customer_id=invoice.customer_id, now=now, data={
        "bundle": invoice.details["bundle"], "credits": str(credits), "invoice": invoice.id, "lot": lot_id})


def on_top_up_failed(ctx: Context, session: Session, invoice: Invoice, attempt: PaymentAttempt | None,
                     now: datetime) -> None:
    invoice.status = "void"  # nothing granted; a new purchase is a new invoice
