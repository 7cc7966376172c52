"""Domain errors: a stable `code`, a category, and the field at fault.

Entry points map the category to an HTTP status, a message on a page, or a CLI exit code,
so a business conflict is never a 500.
"""

from __future__ import annotations


class CreditflowError(Exception):
    category = "invalid"
    http_status = 400
    default_code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param


class InvalidRequest(CreditflowError):
    category = "invalid"
    http_status = 422
    default_code = "invalid_request"


class NotFound(CreditflowError):
    category = "not_found"
    http_status = 404
    default_code = "not_found"


class Conflict(CreditflowError):
    category = "conflict"
    http_status = 409
    default_code = "conflict"


class Forbidden(CreditflowError):
    category = "forbidden"
    http_status = 403
    default_code = "forbidden"


class PaymentFailed(CreditflowError):
    category = "payment_failed"
    http_status = 402
    default_code = "payment_failed"


class InsufficientCredits(CreditflowError):
    category = "payment_failed"
    http_status = 402
    default_code = "insufficient_credits"
