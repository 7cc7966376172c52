from __future__ import annotations

from typing import Literal

from pydantic import Field, model_serializer

from creditflow.api.schemas.common import CustomerId, Id, InstantOut, PositiveMoneyIn, Read, Resource, Request, Text
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


class PaymentAttemptRead(Resource):
    """One try at collecting the invoice: `pending` until the gateway answers, `unknown` while
    its answer is lost (found out later, never charged twice), then `succeeded` or `failed`."""

    object: Literal["payment_attempt"] = "payment_attempt"
    status: str = Field(description="pending, succeeded, failed or unknown")
    amount: int
    currency: str
    failure_code: str | None
    failure_message: str | None
    gateway_reference: str | None
    created_at: InstantOut
    completed_at: InstantOut | None


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


class InvoiceRead(Resource):
    object: Literal["invoice"] = "invoice"
    number: int
    customer: CustomerId
    subscription: str | None = Field(validation_alias="subscription_id")
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
        """The invoice with its payment attempts, which are rows of their own."""
        return super().of(invoice).model_copy(update={"attempts": [PaymentAttemptRead.of(a) for a in attempts]})


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


class RefundRead(Resource):
    object: Literal["refund"] = "refund"
    invoice: str = Field(validation_alias="invoice_id")
    customer: CustomerId
    amount: int
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    reason: str
    created_at: InstantOut
