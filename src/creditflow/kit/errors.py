"""Domain errors: what went wrong, and nothing about how an entry point answers it.

Each error has a `category` (what kind of failure: invalid input, not found, a state
conflict, not allowed, a failed payment), a stable `code`, the `param` at fault and a
`message`. Entry points map the category to their own answer (an HTTP status, a message on a
page, a CLI exit code), so a business conflict is never a 500.
"""

from __future__ import annotations


class CreditflowError(Exception):
    category = "invalid"
    default_code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        # More fields for the caller, answered beside the error (an `invoice` and its `url`, say).
        self.extra = extra or {}


class InvalidRequest(CreditflowError):
    category = "invalid"
    default_code = "invalid_request"


class NotFound(CreditflowError):
    category = "not_found"
    default_code = "not_found"


class Conflict(CreditflowError):
    category = "conflict"
    default_code = "conflict"


class Forbidden(CreditflowError):
    category = "forbidden"
    default_code = "forbidden"


class PaymentFailed(CreditflowError):
    category = "payment_failed"
    default_code = "payment_failed"


class InsufficientCredits(CreditflowError):
    category = "payment_failed"
    default_code = "insufficient_credits"
