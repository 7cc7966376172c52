"""The Stripe gateway, with the official `stripe` SDK.

- One Stripe customer per creditflow customer, created on the first attach; its id is stored as
  the customer's `gateway_customer_id`.
- The token is a Stripe PaymentMethod id (`pm_...`); it is attached to that Stripe customer.
- A charge is a PaymentIntent confirmed on creation, with the payment attempt's id as
  idempotency key and as metadata `creditflow_attempt`. Off-session (renewals) a card that needs
  3-D Secure fails with `authentication_required`; on-session (purchases) the PaymentIntent
  waits in `requires_action` until the browser completes it with Stripe.js
  (`confirmCardPayment` with `authentication_secret`), then `lookup` finds it paid.
- Cards are added with a SetupIntent confirmed in the browser by Stripe.js (`start_card_setup`),
  so the card number goes to Stripe only; `finish_card_setup` reads back the PaymentMethod it
  made, which is then attached like any token.
- Declines are `failed` with Stripe's decline code; network trouble, timeouts and Stripe's own
  errors are `unknown`: we cannot tell whether Stripe charged.
- `lookup` never creates anything: it retrieves the PaymentIntent by its id when we know it,
  else lists the Stripe customer's PaymentIntents (a strongly consistent read, unlike search)
  and matches `creditflow_attempt`.
- Refunds are Stripe refunds of the PaymentIntent, with the refund's id as idempotency key.

The SDK's own network retries are off by default: our retry is reconciliation, which only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import stripe

from creditflow.kit.errors import InvalidRequest, PaymentFailed
from creditflow.payment.gateway import AttachedMethod, Card, CardSetup, ChargeRequest, ChargeResult, RefundResult

ATTEMPT_KEY = "creditflow_attempt"
CUSTOMER_KEY = "creditflow_customer"
ON_SESSION_KEY = "creditflow_on_session"
STRIPE_API = "https://api.stripe.com"
STRIPE_JS = "https://js.stripe.com/v3/"

# Errors that say nothing about the card: Stripe may have acted on the request (a lost answer,
# a 5xx, an idempotency key reused by an earlier request that did go through) or the fault is
# ours (keys, rate). Never the customer's decline: recorded `unknown` and settled by `lookup`.
_UNCERTAIN = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, stripe.AuthenticationError,
              stripe.PermissionError, stripe.IdempotencyError)


class StripeGateway:
    name = "stripe"

    def __init__(self, api_key: str, *, api_base: str | None = None,
                 customer_for_key: Callable[[str], str | None] | None = None,
                 timeout: float = 30.0, max_network_retries: int = 0,
                 http_client: stripe.HTTPClient | None = None, publishable_key: str | None = None):
        """`customer_for_key(idempotency_key)` names the Stripe customer an attempt was charged to;
        `lookup` needs it to find a PaymentIntent whose id never came back (see `context`)."""
        if not api_key:
            raise ValueError("the Stripe gateway needs an API key")
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=http_client or stripe.RequestsClient(timeout=timeout),
        )
        self.customer_for_key = customer_for_key
        # The browser's Stripe.js: localstripe serves its own at `<api base>/js.stripe.com/v3/`.
        self.api_origin = (api_base or STRIPE_API).rstrip("/")
        self.js_url = f"{self.api_origin}/js.stripe.com/v3/" if api_base else STRIPE_JS
        self.publishable_key = publishable_key or "pk_test_creditflow"

    # -- payment methods ------------------------------------------------------------------------

    def attach_payment_method(self, *, customer_id: str, gateway_customer_id: str | None, email: str,
                              token: str) -> AttachedMethod:
        if not isinstance(token, str) or not token.startswith("pm_"):
            raise InvalidRequest("token must be a Stripe PaymentMethod id (pm_...)", param="token")
        try:
            if gateway_customer_id is None:
                gateway_customer_id = self._find_or_create_customer(customer_id, email)
            method = self.client.v1.payment_methods.retrieve(token)
            owner = _id_of(_field(method, "customer"))
            if owner is None:
                self.client.v1.payment_methods.attach(token, params={"customer": gateway_customer_id})
            elif owner != gateway_customer_id:
                raise InvalidRequest("this payment method belongs to another customer", param="token")
            self.client.v1.customers.update(
                gateway_customer_id, params={"invoice_settings": {"default_payment_method": token}})
        except stripe.CardError as exc:
            raise PaymentFailed(f"The card was refused: {_message(exc)}", code="payment_failed",
                                param="token") from exc
        except stripe.InvalidRequestError as exc:
            raise InvalidRequest(f"Stripe refused the payment method: {_message(exc)}", param="token") from exc
        except stripe.StripeError as exc:
            raise PaymentFailed(f"The payment processor could not be reached ({_message(exc)}); try again.",
                                code="gateway_unavailable", param="token") from exc
        return AttachedMethod(gateway_customer_id, token, _card(method))

    def start_card_setup(self, *, customer_id: str, gateway_customer_id: str | None,
                         email: str) -> tuple[str, CardSetup]:
        """A SetupIntent for the browser to confirm with the card; returns the Stripe customer
        (created if need be) and what the page needs."""
        try:
            if gateway_customer_id is None:
                gateway_customer_id = self._find_or_create_customer(customer_id, email)
            intent = self.client.v1.setup_intents.create(params={
                "customer": gateway_customer_id, "usage": "off_session", "payment_method_types": ["card"],
                "metadata": {CUSTOMER_KEY: customer_id}})
        except stripe.StripeError as exc:
            raise PaymentFailed(f"The payment processor could not be reached ({_message(exc)}); try again.",
                                code="gateway_unavailable") from exc
        return gateway_customer_id, CardSetup(intent.client_secret, self.publishable_key, self.js_url,
                                              self.api_origin)

    def finish_card_setup(self, *, setup_intent: str, gateway_customer_id: str | None) -> str:
        """The PaymentMethod a SetupIntent of this customer set up in the browser (its token)."""
        if not isinstance(setup_intent, str) or not setup_intent.startswith("seti_"):
            raise InvalidRequest("setup_intent must be a Stripe SetupIntent id (seti_...)", param="setup_intent")
        try:
            intent = self.client.v1.setup_intents.retrieve(setup_intent)
        except stripe.InvalidRequestError as exc:
            raise InvalidRequest(f"Stripe doesn't know this card setup: {_message(exc)}",
                                 param="setup_intent") from exc
        except stripe.StripeError as exc:
            raise PaymentFailed(f"The payment processor could not be reached ({_message(exc)}); try again.",
                                code="gateway_unavailable") from exc
        if gateway_customer_id is None or _id_of(_field(intent, "customer")) != gateway_customer_id:
            raise InvalidRequest("this card setup belongs to another customer", param="setup_intent")
        method = _id_of(_field(intent, "payment_method"))
        if _field(intent, "status") != "succeeded" or method is None:
            raise PaymentFailed("The card was not set up (its authentication failed or was cancelled).",
                                code="payment_failed", param="setup_intent")
        return method

    def authentication_secret(self, reference: str) -> str | None:
        """The client secret Stripe.js completes a PaymentIntent waiting for 3-D Secure with;
        None when it no longer waits."""
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
        except stripe.StripeError:
            return None
        return intent.client_secret if _field(intent, "status") == "requires_action" else None

    def _find_or_create_customer(self, customer_id: str, email: str) -> str:
        """The Stripe customer of a creditflow customer. Its id is stored only once a card is
        attached, so a first attach that failed (a declined card) left one behind: reuse it."""
        for existing in self.client.v1.customers.list(params={"email": email, "limit": 100}).auto_paging_iter():
            if _field(_field(existing, "metadata"), CUSTOMER_KEY) == customer_id:
                return existing.id
        # Keyed by our customer too: two concurrent first attaches get one Stripe customer.
        return self.client.v1.customers.create(
            params={"email": email, "metadata": {CUSTOMER_KEY: customer_id}},
            options={"idempotency_key": f"creditflow-customer-{customer_id}"},
        ).id

    # -- charges --------------------------------------------------------------------------------

    def charge(self, request: ChargeRequest) -> ChargeResult:
        params: dict[str, Any] = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "payment_method": request.payment_method,
            "confirm": True,
            # The description goes in metadata: localstripe refuses `description`.
            "metadata": {ATTEMPT_KEY: request.idempotency_key, CUSTOMER_KEY: request.customer_id,
                         "creditflow_description": request.description[:500]},
        }
        if request.on_session:  # the customer can authenticate: 3-D Secure waits for them
            params["payment_method_types"] = ["card"]
            params["metadata"][ON_SESSION_KEY] = "1"
        else:
            params["off_session"] = True
        if request.gateway_customer_id:
            params["customer"] = request.gateway_customer_id
        try:
            intent = self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": request.idempotency_key})
        except stripe.CardError as exc:  # a decline: nothing was charged
            return ChargeResult("failed", reference=_intent_of_error(exc), failure_code=_decline_code(exc),
                                failure_message=_message(exc))
        except _UNCERTAIN as exc:
            return ChargeResult("unknown", failure_code=_uncertain_code(exc), failure_message=_message(exc))
        except stripe.InvalidRequestError as exc:  # refused before charging (a detached card, say)
            return ChargeResult("failed", reference=_intent_of_error(exc),
                                failure_code=exc.code or "invalid_request", failure_message=_message(exc))
        except stripe.StripeError as exc:
            return ChargeResult("unknown", failure_code="gateway_error", failure_message=_message(exc))
        return _result_of(intent)

    def lookup(self, idempotency_key: str, reference: str | None) -> ChargeResult:
        try:
            if reference:
                return _result_of(self.client.v1.payment_intents.retrieve(reference))
            customer = self.customer_for_key(idempotency_key) if self.customer_for_key else None
            if customer is None:
                # Without a Stripe customer the charge could not have been made (attach creates it).
                return ChargeResult("not_found")
            for intent in self._intents_of(customer):
                if _field(_field(intent, "metadata"), ATTEMPT_KEY) == idempotency_key:
                    return _result_of(intent)
            return ChargeResult("not_found")
        except stripe.StripeError as exc:
            return ChargeResult("unknown", failure_code=_uncertain_code(exc), failure_message=_message(exc))

    def _intents_of(self, customer: str) -> Iterator[Any]:
        try:
            page = self.client.v1.payment_intents.list(params={"customer": customer, "limit": 100})
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 400 or "customer" not in (exc.user_message or ""):
                raise
            # localstripe can't filter PaymentIntents by customer: list them all and filter here.
            page = self.client.v1.payment_intents.list(params={"limit": 100})
        for intent in page.auto_paging_iter():
            if _id_of(_field(intent, "customer")) == customer:
                yield intent

    # -- refunds --------------------------------------------------------------------------------

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> RefundResult:
        """Declines and refusals are `failed`; network trouble raises, leaving the refund pending
        so that it is retried with the same idempotency key."""
        if not reference:
            return RefundResult("failed", failure_message="no Stripe payment to refund")
        try:
            refund = self.client.v1.refunds.create(
                params={"payment_intent": reference, "amount": amount,
                        "metadata": {"creditflow_refund": idempotency_key}},
                options={"idempotency_key": idempotency_key})
        except (stripe.CardError, stripe.InvalidRequestError) as exc:
            return RefundResult("failed", failure_message=f"Stripe refused the refund: {_message(exc)}")
        if refund.status in ("succeeded", "pending"):  # pending: accepted, on its way to the card
            return RefundResult("succeeded", reference=refund.id)
        return RefundResult("failed", reference=refund.id,
                            failure_message=f"Stripe refund {refund.id} is {refund.status}")


def _result_of(intent: Any) -> ChargeResult:
    status = _field(intent, "status")
    if status == "succeeded":
        return ChargeResult("succeeded", reference=intent.id)
    if status == "processing":
        return ChargeResult("unknown", reference=intent.id, failure_code="processing",
                            failure_message="Stripe is still processing the payment.")
    error = _field(intent, "last_payment_error") or {}
    if status == "requires_action" and _field(_field(intent, "metadata"), ON_SESSION_KEY) == "1":
        return ChargeResult("requires_action", reference=intent.id, failure_code="authentication_required",
                            failure_message="The card needs the customer's authentication (3-D Secure).")
    if status == "requires_action":
        return ChargeResult("failed", reference=intent.id, failure_code="authentication_required",
                            failure_message="The card needs the customer's authentication.")
    if _field(error, "code") == "payment_intent_authentication_failure":  # 3-D Secure failed: may try again
        return ChargeResult("failed", reference=intent.id, failure_code="authentication_failed",
                            failure_message=_field(error, "message") or "The card's authentication failed.")
    return ChargeResult("failed", reference=intent.id,
                        failure_code=_field(error, "decline_code") or _field(error, "code") or status,
                        failure_message=_field(error, "message") or f"The payment is {status}.")


def _field(obj: Any, key: str) -> Any:
    """A field of a Stripe object (not a dict since SDK v13) or of a plain dict; None if absent."""
    if obj is None:
        return None
    try:
        return obj[key]
    except KeyError:
        return None


def _id_of(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _field(value, "id")


def _intent_of_error(exc: stripe.StripeError) -> str | None:
    return _id_of(_field(exc.error, "payment_intent"))


def _decline_code(exc: stripe.StripeError) -> str:
    return _field(exc.error, "decline_code") or exc.code or "card_declined"


def _uncertain_code(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.APIConnectionError):
        return "timeout" if "timed out" in str(exc).lower() else "network_error"
    return exc.code or "gateway_error"


def _message(exc: stripe.StripeError) -> str:
    return (exc.user_message or str(exc) or exc.__class__.__name__)[:500]


def _card(method) -> Card | None:
    card = _field(method, "card")
    if card is None:
        return None
    return Card(str(_field(card, "brand")), str(_field(card, "last4")), int(_field(card, "exp_month")),
                int(_field(card, "exp_year")))
