"""Open invoices the customer pays later, from the billing page: a purchase whose 3-D Secure
was failed or abandoned, a renewal in dunning. Paying one is a new on-session attempt through the
one purchase path (`checkout`); an invoice whose purchase no longer applies (a plan change priced
before the subscription changed again, a top-up while past due) is voided instead."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.customer.models import Customer
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import get_invoice
from creditflow.kit.errors import Conflict
from creditflow.payment import attempts
from creditflow.payment.attempts import Ticket
from creditflow.payment.models import PaymentAttempt
from creditflow.purchase.checkout import Outcome, collect, open_collection, supersede_waiting, waiting_attempt
from creditflow.purchase.fulfilment import FULFILMENT
from creditflow.subscription.models import Subscription
from creditflow.subscription.options import top_up_refusal
from creditflow.subscription.repository import live_subscription


def payable_refusal(session: Session, invoice: Invoice) -> str | None:
    """Why an open invoice can't be paid any more (what it would buy no longer applies), or None."""
    if invoice.status != "open":
        return "This invoice is no longer open."
    sub = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if invoice.purpose == "plan_change" and (sub is None or sub.status != "active"
                                             or sub.version != invoice.details.get("version")):
        return "Your subscription changed since this plan change was priced. Preview the change again."
    if invoice.purpose == "renewal" and (sub is None or sub.pending_invoice_id != invoice.id):
        return "This renewal is no longer due."
    if invoice.purpose == "top_up" and top_up_refusal(live_subscription(session, invoice.customer_id)):
        return top_up_refusal(live_subscription(session, invoice.customer_id)).sentence
    return None


def payable_invoices(session: Session, customer_id: str) -> list[tuple[Invoice, PaymentAttempt | None]]:
    """The customer's open invoices that wait for them to pay (an abandoned authentication, a
    renewal in dunning), with the attempt waiting for authentication if there is one. A renewal
    the worker is still collecting, or an invoice with a payment on its way, is not listed."""
    found = []
    for invoice in session.scalars(select(Invoice).where(
            Invoice.customer_id == customer_id, Invoice.status == "open").order_by(Invoice.number)):
        if attempts.pending_attempt(session, invoice.id) is not None or payable_refusal(session, invoice):
            continue
        if invoice.purpose == "renewal" and session.get(Subscription, invoice.subscription_id).status != "past_due":
            continue
        found.append((invoice, waiting_attempt(session, invoice.id)))
    return found


def pay_open_invoice(ctx: Context, invoice_id: str, now: datetime) -> Outcome:
    """The customer pays an open invoice from the page (a purchase whose authentication was
    abandoned, a renewal in dunning): a new on-session attempt through the same steps. An
    invoice that no longer applies is voided instead (what it would buy is undone, as for a
    declined payment). Raises AuthenticationRequired when the card asks for it again."""
    def begin(session: Session) -> Ticket | Outcome:
        invoice = get_invoice(session, invoice_id, for_update=True)
        if invoice.status != "open":
            raise Conflict("This invoice is no longer open.", code="invoice_not_open")
        if attempts.pending_attempt(session, invoice.id) is not None:
            raise Conflict("A payment of this invoice is already on its way.", code="payment_pending")
        refusal = payable_refusal(session, invoice)
        if refusal is not None:
            void_open_invoice(ctx, session, invoice, now)
            return Outcome(invoice.id, "void", "not_payable", refusal)
        return open_collection(ctx, session, invoice, now, on_session=True)

    return collect(ctx, invoice_id, now, ctx.db.run(begin))


def void_open_invoice(ctx: Context, session: Session, invoice: Invoice, now: datetime) -> None:
    """An open invoice that will not be paid: undone as after a declined payment (an incomplete
    subscription removed, a leased change released), the account balance it held given back."""
    supersede_waiting(session, invoice.id, now)
    if invoice.balance_applied:
        customer = session.get(Customer, invoice.customer_id, with_for_update=True, populate_existing=True)
        customer.balance += invoice.balance_applied
        invoice.balance_applied = 0
    if invoice.purpose != "renewal":  # a renewal no longer due has nothing to undo
        FULFILMENT[invoice.purpose].on_failed(ctx, session, invoice, None, now)
    invoice.status = "void"


def cancel_purchase(ctx: Context, invoice_id: str, now: datetime) -> None:
    """The customer gives up a purchase left unpaid: its invoice is voided and nothing of it
    happens. Not a renewal (that one is dunned), nor an invoice with a payment on its way."""
    def cancel(session: Session) -> None:
        invoice = get_invoice(session, invoice_id, for_update=True)
        if invoice.status != "open" or invoice.purpose == "renewal":
            raise Conflict("This invoice can't be cancelled.", code="invoice_not_open")
        if attempts.pending_attempt(session, invoice.id) is not None:
            raise Conflict("A payment of this invoice is already on its way.", code="payment_pending")
        void_open_invoice(ctx, session, invoice, now)

    ctx.db.run(cancel)
