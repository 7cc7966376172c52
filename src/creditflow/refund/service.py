"""Refunds as the rules see them: which invoices may be refunded, and how much is left.
Refunding itself goes through the gateway: `purchase.refund`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.credits.models import CreditEntry
from creditflow.customer.service import customer_now
from creditflow.invoicing.models import Invoice
from creditflow.invoicing.service import get_invoice
from creditflow.kit.credits import Credits
from creditflow.refund.policy import Eligibility, refund_eligibility

SUBSCRIPTION_PURPOSES = ("subscription_create", "renewal", "plan_change")


def credits_spent_since(session: Session, customer_id: str, since: datetime) -> Credits:
    """Credits consumed by spends and settled holds since an instant, net of the refunds of those
    spends (a refund of a spend made before `since` gives nothing back to this count)."""
    consumed = (CreditEntry.customer_id == customer_id) & (CreditEntry.created_at >= since)
    spent = session.scalar(select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
        consumed, CreditEntry.kind.in_(("spend", "settle"))))
    references_since = select(CreditEntry.reference).where(consumed, CreditEntry.kind.in_(("spend", "settle")))
    # A refund comes after the spend it returns, so after `since` too: saying so lets PostgreSQL
    # read only the months since (ledger entries are partitioned by month of created_at).
    returned = session.scalar(select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
        consumed, CreditEntry.kind == "refund", CreditEntry.reference.in_(references_since)))
    return Credits(max(0, _milli(spent) - _milli(returned)))


def _milli(value) -> int:
    return value.milli if isinstance(value, Credits) else int(value)


def eligibility(ctx: Context, session: Session, invoice_id: str) -> Eligibility:
    invoice = get_invoice(session, invoice_id)
    now = customer_now(ctx, session, invoice.customer_id)
    return _eligibility(ctx, session, invoice, now)


def _eligibility(ctx: Context, session: Session, invoice: Invoice, now: datetime) -> Eligibility:
    earlier = session.scalar(
        select(func.count()).select_from(Invoice).where(
            Invoice.customer_id == invoice.customer_id, Invoice.purpose == "subscription_create",
            Invoice.status.in_(("paid", "refunded")), Invoice.number < invoice.number)
    )
    return refund_eligibility(
        ctx.catalog.policies.refund, purpose=invoice.purpose, status=invoice.status,
        term=invoice.details.get("term"), first_purchase=earlier == 0, paid_at=invoice.paid_at,
        credits_spent_since=(credits_spent_since(session, invoice.customer_id, invoice.paid_at)
                             if invoice.paid_at else Credits(0)),
        now=now,
    )


def refundable_amount(invoice: Invoice) -> int:
    return invoice.amount_paid - invoice.amount_refunded


def latest_term_invoice(session: Session, subscription_id: str) -> Invoice | None:
    """The paid invoice that bought the subscription's current term."""
    return session.scalar(
        select(Invoice).where(Invoice.subscription_id == subscription_id, Invoice.status == "paid",
                              Invoice.purpose.in_(SUBSCRIPTION_PURPOSES))
        .order_by(Invoice.number.desc()).limit(1)
    )
