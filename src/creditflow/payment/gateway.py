"""The payment gateway interface.

A gateway call is never made inside an open database transaction. Every charge
carries an idempotency key (the payment attempt's id), so asking again, after a crash or a
timeout, returns the first outcome instead of charging twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

# `requires_action`: the card asks for the cardholder's authentication (3-D Secure), which only
# an on-session charge can get; nothing is charged until it is completed.
ChargeStatus = Literal["succeeded", "failed", "unknown", "not_found", "requires_action"]


@dataclass(frozen=True)
class ChargeResult:
    status: ChargeStatus
    reference: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class RefundResult:
    status: Literal["succeeded", "failed"]
    reference: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class Card:
    """What may be shown of a card: never its number."""

    brand: str  # visa, mastercard, amex, ...
    last4: str
    exp_month: int
    exp_year: int

    def as_dict(self) -> dict:
        return {"brand": self.brand, "last4": self.last4, "exp_month": self.exp_month, "exp_year": self.exp_year}


@dataclass(frozen=True)
class AttachedMethod:
    gateway_customer_id: str | None
    method_id: str  # what charges name
    card: Card | None  # None: the gateway didn't say (not a card)


@dataclass(frozen=True)
class ChargeRequest:
    customer_id: str
    gateway_customer_id: str | None
    payment_method: str
    amount: int
    currency: str
    idempotency_key: str
    description: str
    # On-session: the customer is at hand to authenticate (a purchase); off-session (a renewal)
    # a card that needs authentication fails with `authentication_required`.
    on_session: bool = False


@dataclass(frozen=True)
class CardSetup:
    """What the browser needs to collect a card straight into the gateway (Stripe.js)."""

    client_secret: str
    publishable_key: str
    js_url: str  # the Stripe.js to load
    api_origin: str  # where Stripe.js talks to (the page's Content-Security-Policy allows it)


class Gateway(Protocol):
    name: str

    def attach_payment_method(self, *, customer_id: str, gateway_customer_id: str | None, email: str,
                              token: str) -> AttachedMethod:
        """Validate and attach a token as the customer's default payment method."""

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge off-session. Declines are `failed`; timeouts and network errors `unknown`."""

    def lookup(self, idempotency_key: str, reference: str | None) -> ChargeResult:
        """What became of an earlier charge; `not_found` if the gateway never saw it."""

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> RefundResult: ...

    # Optional, by gateway: the sandbox authenticates on its own page (`authenticate`); Stripe
    # collects cards with a SetupIntent and authenticates in the browser with Stripe.js
    # (`start_card_setup`, `finish_card_setup`, `authentication_secret`).
