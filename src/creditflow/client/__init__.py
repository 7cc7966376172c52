"""A Python client for creditflow's HTTP API, sync and async.

    from creditflow.client import Client

    with Client("https://billing.internal", "sk_...") as cf:
        customer = cf.customers.create(external_id="user-42", email="ada@example.com")
        cf.credits.spend(customer["id"], amount="12.5", feature="image_gen", reference="job-9")

Answers are the API's JSON objects (typed in `creditflow.client.types`); errors are exceptions
carrying the API's `code` and `param` (`creditflow.client.errors`). Writes carry an
idempotency key, so the client's retries never do anything twice. It depends on httpx only and
on no other part of creditflow, so a host app may use it against a creditflow of any version
that has the endpoints it calls.
"""

from creditflow.client._client import AsyncClient, Client
from creditflow.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CreditflowError,
    InvalidRequestError,
    LimitReachedError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from creditflow.client.webhooks import WebhookSignatureError, verify_webhook

__all__ = [
    "APIConnectionError", "APIError", "AsyncClient", "AuthenticationError", "BadRequestError", "Client",
    "ConflictError", "CreditflowError", "InvalidRequestError", "LimitReachedError", "NotFoundError", "PaymentRequiredError",
    "PermissionDeniedError", "RateLimitError", "ServerError", "WebhookSignatureError", "verify_webhook",
]
