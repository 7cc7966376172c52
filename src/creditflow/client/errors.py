"""What the client raises: the API's error envelope as exceptions, by status."""

from __future__ import annotations


class CreditflowError(Exception):
    """Base of everything the client raises."""


class APIConnectionError(CreditflowError):
    """The server could not be reached, or didn't answer in time (after the retries)."""


class APIError(CreditflowError):
    """An error answer: `status`, and the envelope's `code`, `message` and `param` (the field
    at fault, or None). `body` is the whole answer (a 402 `authentication_required` carries an
    `invoice` and a `url` beside the error)."""

    def __init__(self, status: int, code: str, message: str, param: str | None, body: dict):
        super().__init__(f"{status} {code}: {message}" + (f" (param: {param})" if param else ""))
        self.status, self.code, self.message, self.param, self.body = status, code, message, param, body


class BadRequestError(APIError):
    """400, 413, 415: the request itself is malformed."""


class AuthenticationError(APIError):
    """401: a missing or wrong key."""


class PaymentRequiredError(APIError):
    """402: a payment failed or needs authentication, or not enough credits."""


class PermissionDeniedError(APIError):
    """403: the key's scope doesn't allow it, or the plan doesn't."""


class NotFoundError(APIError):
    """404."""


class ConflictError(APIError):
    """409: the state doesn't allow it now (or an idempotency key was reused)."""


class InvalidRequestError(APIError):
    """422: a field is wrong; `param` names it."""


class RateLimitError(APIError):
    """429."""


class LimitReachedError(RateLimitError):
    """429 `concurrency_limit` or `daily_limit`: the customer's plan allows no more such jobs now.
    Not retried; `resets_at` says when the limit frees up."""

    @property
    def resets_at(self) -> str | None:
        return self.body.get("resets_at")


LIMIT_CODES = ("concurrency_limit", "daily_limit")


class ServerError(APIError):
    """5xx."""


_BY_STATUS = {400: BadRequestError, 401: AuthenticationError, 402: PaymentRequiredError,
              403: PermissionDeniedError, 404: NotFoundError, 409: ConflictError, 413: BadRequestError,
              415: BadRequestError, 422: InvalidRequestError, 429: RateLimitError}


def error_for(status: int, body: object) -> APIError:
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        envelope = {"code": "http_error", "message": f"the server answered {status}"}
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    if status == 429 and envelope.get("code") in LIMIT_CODES:
        kind = LimitReachedError
    return kind(status, str(envelope.get("code")), str(envelope.get("message")), envelope.get("param"),
                body if isinstance(body, dict) else {})
