from __future__ import annotations

from typing import Literal

from pydantic import Field, model_serializer

from creditflow.api.schemas.common import Id, InstantOut, PositiveMoneyIn, Read, Request, Text
from creditflow.api.schemas.customer import BillingAddress


class MoneyLine(Read):
    """A line of an invoice, a preview or a quote; `rate` and `country` only on tax lines."""

    kind: str
    description: str
    amount: int
    rate: str | None = Field(default=None, description="Tax lines only: the percent, as a decimal string (\"19\")")
    country: str | None = Field(default=None, description="Tax lines only: the country, or country-region, taxed for")

    @model_serializer(mode="wrap")
    def _tax_fields_on_tax_lines_only(self, handler):
        data = handler(self)
        if self.kind != "tax":
            data.pop("rate", None)
            data.pop("country", None)
        return data


class InvoiceLineRead(MoneyLine):
    period_start: InstantOut | None
    period_end: InstantOut | None


class PaymentAttemptRead(Read):
    """One try at collecting the invoice: `pending` until the gateway answers, `unknown` while
    its answer is lost (found out later, never charged twice), then `succeeded` or `failed`."""

    id: str
    object: Literal["payment_attempt"] = "payment_attempt"
    status: str = Field(description="pending, succeeded, failed or unknown")
    amount: int
    currency: str
    failure_code: str | None
    failure_message: str | None
    gateway_reference: str | None
    created_at: InstantOut
    completed_at: InstantOut | None

    @classmethod
    def of(cls, attempt) -> "PaymentAttemptRead":
        return cls(id=attempt.id, status=attempt.status, amount=attempt.amount, currency=attempt.currency,
                   failure_code=attempt.failure_code, failure_message=attempt.failure_message,
                   gateway_reference=attempt.gateway_reference, created_at=attempt.created_at,
                   completed_at=attempt.completed_at)


class PartyRead(Read):
    """Who sold or who bought, as on the invoice when it was issued."""

    name: str | None
    address: BillingAddress | None
    country: str | None = None
    tax_id: str | None


class SellerRead(Read):
    """The seller as the catalog named it when the invoice was issued."""

    name: str
    address: str | None
    tax_id: str | None
    country: str | None = None


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
    discount: int = Field(default=0, description="Taken off by a coupon (its line is a negative `discount` line)")
    tax: int
    total: int = Field(description="subtotal - discount + tax (tax-exclusive prices); subtotal - discount when "
                                   "prices include tax, `tax` being the part that is tax")
    balance_applied: int
    amount_paid: int
    amount_refunded: int
    created_at: InstantOut
    paid_at: InstantOut | None
    attempts: list[PaymentAttemptRead] = Field(
        default_factory=list, description="Its payment attempts, oldest first (none for an invoice never charged)")
    seller: SellerRead | None = Field(default=None, description="The seller as the catalog named it at issue")
    bill_to: PartyRead | None = Field(default=None, description="The customer's billing details at issue "
                                                                "(null on invoices issued before they were kept)")

    @classmethod
    def of(cls, invoice, attempts=()) -> "InvoiceRead":
        return cls(attempts=[PaymentAttemptRead.of(attempt) for attempt in attempts],
            id=invoice.id, number=invoice.number, customer=invoice.customer_id, subscription=invoice.subscription_id,
            purpose=invoice.purpose, status=invoice.status, currency=invoice.currency,
            lines=[InvoiceLineRead(kind=line.kind, description=line.description, amount=line.amount,
                                   period_start=line.period_start, period_end=line.period_end, rate=line.rate,
                                   country=line.country)
                   for line in invoice.lines],
            subtotal=invoice.subtotal, discount=invoice.discount, tax=invoice.tax, total=invoice.total, balance_applied=invoice.balance_applied,
            amount_paid=invoice.amount_paid, amount_refunded=invoice.amount_refunded, created_at=invoice.created_at,
            paid_at=invoice.paid_at, seller=invoice.seller, bill_to=invoice.bill_to)


class RefundEligibilityRead(Read):
    object: Literal["refund_eligibility"] = "refund_eligibility"
    invoice: str
    eligible: bool
    reason: str


class RefundCreate(Request):
    invoice: Id
    amount: PositiveMoneyIn | None = Field(
        default=None, description="Minor units (cents); default: all that can still be refunded")
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
