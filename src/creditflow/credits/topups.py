"""Top-up bundles (T1, T2): charged first, credited only once the payment succeeded.

The purchase is an invoice with purpose `top_up`, collected through the payment flow (attempt
committed before the gateway is called, SPEC P3). The credits are granted by the fulfilment
handler below, in the transaction that records the successful payment, as a never-expiring
`top_up` lot with grant key `topup:<invoice id>`, so a payment settled twice (or reconciled
later by the worker) grants once.

A client `reference` (the API's Idempotency-Key) makes a retried purchase return the first
one instead of charging again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.credits import inputs
from creditflow.credits.grants import grant_credits
from creditflow.credits.models import CreditLot
from creditflow.customer.service import get_customer
from creditflow.events.outbox import record_event
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import LineDraft, create_invoice
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, PaymentFailed
from creditflow.payment import fulfilment
from creditflow.payment.service import begin_collection, collect
from creditflow.subscription.repository import live_subscription

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


def purchase_top_up(ctx, customer_id: str, *, bundle: str, reference: str | None = None) -> TopUp:
    """Buy a bundle: charge its price, then grant its credits.

    Errors: InvalidRequest `unknown_bundle`, NotFound (customer), Conflict
    `subscription_required` (Free or past_due: nothing charged), Conflict `reference_reused`
    (the reference bought another bundle), PaymentFailed `payment_failed` (nothing granted) or
    `payment_pending` (the gateway's answer is unknown; reconciled later, never charged twice).
    """
    bundle_def = ctx.catalog.bundle(bundle)
    reference = inputs.optional_reference(reference)
    customer_id = inputs.identifier(customer_id, "customer")

    with ctx.db.transaction() as session:
        customer = get_customer(session, customer_id, for_update=True)  # serialises purchases
        now = ctx.now_for(session, customer_id)
        dedupe_key = f"topup:{customer_id}:{reference}" if reference is not None else None
        if dedupe_key is not None:
            earlier = session.scalar(select(Invoice).where(Invoice.dedupe_key == dedupe_key))
            if earlier is not None:
                if earlier.details.get("bundle") != bundle_def.code:
                    raise Conflict(f"reference {reference!r} was used to buy {earlier.details.get('bundle')}",
                                   code="reference_reused", param="reference")
                return _outcome_of(session, earlier, replayed=True)
        sub = live_subscription(session, customer_id)
        if sub is None or sub.status != "active":
            raise Conflict("credit top-ups need an active subscription", code="subscription_required",
                           param="customer")
        invoice = create_invoice(
            session, customer_id=customer_id, currency=customer.currency, purpose=PURPOSE, now=now,
            subscription_id=sub.id, dedupe_key=dedupe_key,
            details={"bundle": bundle_def.code, "credits": str(bundle_def.credits), "reference": reference},
            lines=[LineDraft("top_up", bundle_def.name, bundle_def.price)],
        )
        invoice_id = invoice.id
        begin = begin_collection(ctx, session, invoice, now)
    collect(ctx, invoice_id, now, begin)
    with ctx.db.transaction(readonly=True) as session:
        return _outcome_of(session, session.get(Invoice, invoice_id))


def _outcome_of(session: Session, invoice: Invoice, *, replayed: bool = False) -> TopUp:
    if invoice.status in ("paid", "refunded"):
        lot = session.scalar(select(CreditLot).where(CreditLot.grant_key == _grant_key(invoice.id)))
        return TopUp(invoice.customer_id, invoice.details["bundle"], lot.granted, invoice.id, lot.id,
                     invoice.amount_paid, invoice.currency, invoice.created_at, replayed)
    if invoice.status == "void":
        raise PaymentFailed("The payment for the top-up failed; nothing was charged or granted.",
                            code="payment_failed")
    raise PaymentFailed(
        "The payment's outcome is not known yet; the credits are granted if the charge went through. "
        "Nothing will be charged twice.", code="payment_pending")


def _grant_key(invoice_id: str) -> str:
    return f"topup:{invoice_id}"


def _on_paid(ctx, session: Session, invoice: Invoice, attempt, now: datetime) -> None:
    credits = Credits.parse(invoice.details["credits"])
    lot = grant_credits(session, customer_id=invoice.customer_id, kind="top_up", amount=credits, now=now,
                        expires_at=None, invoice_id=invoice.id, grant_key=_grant_key(invoice.id))
    record_event(session, "top_up.purchased", customer_id=invoice.customer_id, now=now, data={
        "bundle": invoice.details["bundle"], "credits": str(credits), "invoice": invoice.id, "lot": lot.id})


def _on_failed(ctx, session: Session, invoice: Invoice, attempt, now: datetime) -> None:
    invoice.status = "void"  # nothing granted; a new purchase is a new invoice


fulfilment.register(PURPOSE, on_paid=_on_paid, on_failed=_on_failed)
