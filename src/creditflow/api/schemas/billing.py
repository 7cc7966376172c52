from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from creditflow.api.schemas.common import Id, InstantOut, Read, Request, Text


class InvoiceLineRead(Read):
    kind: str
    description: str
    amount: int
    period_start: InstantOut | None
    period_end: InstantOut | None


class InvoiceRead(Read):
    id: str
    object: Literal["invoice"] = "invoice"
    number: int
    customer: str
    subscription: str | None
    purpose: str
    status: Literal["open", "paid", "void", "refunded"]
    currency: str
    lines: list[InvoiceLineRead]
    subtotal: int
    tax: int
    total: int
    balance_applied: int
    amount_paid: int
    amount_refunded: int
    created_at: InstantOut
    paid_at: InstantOut | None

    @classmethod
    def of(cls, invoice) -> "InvoiceRead":
        return cls(
            id=invoice.id, number=invoice.number, customer=invoice.customer_id, subscription=invoice.subscription_id,
            purpose=invoice.purpose, status=invoice.status, currency=invoice.currency,
            lines=[InvoiceLineRead(kind=line.kind, description=line.description, amount=line.amount,
                                   period_start=line.period_start, period_end=line.period_end)
                   for line in invoice.lines],
            subtotal=invoice.subtotal, tax=invoice.tax, total=invoice.total, balance_applied=invoice.balance_applied,
            amount_paid=invoice.amount_paid, amount_refunded=invoice.amount_refunded, created_at=invoice.created_at,
            paid_at=invoice.paid_at)


class RefundEligibilityRead(Read):
    object: Literal["refund_eligibility"] = "refund_eligibility"
    invoice: str
    eligible: bool
    reason: str


class RefundCreate(Request):
    invoice: Id
    amount: StrictInt | None = Field(default=None, gt=0, le=10**12,
                                     description="Minor units; default: all that can still be refunded")
    reason: Text


class RefundRead(Read):
    id: str
    object: Literal["refund"] = "refund"
    invoice: str
    customer: str
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    reason: str
    created_at: InstantOut

    @classmethod
    def of(cls, refund) -> "RefundRead":
        return cls(id=refund.id, invoice=refund.invoice_id, customer=refund.customer_id, amount=refund.amount,
                   currency=refund.currency, status=refund.status, reason=refund.reason,
                   created_at=refund.created_at)
