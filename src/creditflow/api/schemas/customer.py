from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from creditflow.api.schemas.common import Id, InstantOut, Read, Resource, Request


class CustomerCreate(Request):
    external_id: str = Field(min_length=1, max_length=255)
    email: str = Field(max_length=320, description="An email address (checked: name@example.com)")
    name: str | None = Field(default=None, max_length=255)
    country: str | None = Field(default=None, max_length=64, description="ISO 3166-1 two-letter code (checked)")
    timezone: str | None = Field(default=None, min_length=1, max_length=64, description="IANA zone, default UTC")
    test_clock: Id | None = None
    language: str | None = Field(default=None, max_length=35,
                                 description="Language of the customer's emails, e.g. `de` or `pt-BR` (default English)")


class PaymentMethodSet(Request):
    token: str = Field(min_length=1, max_length=255,
                       description="Sandbox: pm_card_ok, pm_card_declined, pm_card_timeout, "
                                   "pm_card_ok_then_declined; Stripe: a PaymentMethod id")


class CustomerUpdate(Request):
    """Billing details: only the fields sent change; null clears address and tax_id."""

    name: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    country: str | None = Field(default=None, description="ISO 3166-1 two-letter code")
    address: dict[str, Any] | None = Field(default=None, description="{line1, line2?, city, postal_code, state?}")
    tax_id: str | None = Field(default=None, max_length=64,
                               description="Checked against the country's format and check digits where known")
    language: str | None = Field(default=None, max_length=35,
                                 description="Language of the customer's emails; null: English")


class PaymentMethodRead(Read):
    object: Literal["payment_method"] = "payment_method"
    id: str = Field(description="The gateway's id of the payment method")
    brand: str | None = Field(description="visa, mastercard, ...; null when the gateway gave none")
    last4: str | None
    exp_month: int | None
    exp_year: int | None

    @classmethod
    def of(cls, customer) -> "PaymentMethodRead":
        card = customer.card or {}
        return cls(id=customer.payment_method, brand=card.get("brand"), last4=card.get("last4"),
                   exp_month=card.get("exp_month"), exp_year=card.get("exp_year"))


class BillingAddress(Read):
    line1: str
    line2: str | None
    city: str
    postal_code: str
    state: str | None


class CustomerRead(Resource):
    object: Literal["customer"] = "customer"
    external_id: str
    email: str
    name: str | None
    country: str | None
    timezone: str
    language: str | None = Field(default=None, description="Language of the customer's emails; null: English")
    test_clock: str | None
    plan: str = Field(description="The plan code of the live paid subscription, or `free`")
    balance: int = Field(description="Account balance in minor units, owed to the customer")
    currency: str
    payment_method: str | None
    address: BillingAddress | None = None
    tax_id: str | None = None
    created_at: InstantOut

    @classmethod
    def of(cls, customer, plan: str) -> "CustomerRead":
        return cls(id=customer.id, external_id=customer.external_id, email=customer.email, name=customer.name,
                   country=customer.country, timezone=customer.timezone, language=customer.language,
                   test_clock=customer.test_clock_id,
                   plan=plan, balance=customer.balance, currency=customer.currency,
                   payment_method=customer.payment_method, address=customer.address, tax_id=customer.tax_id,
                   created_at=customer.created_at)
