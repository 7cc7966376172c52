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

    def __init_subclass__(cls, *, category: str | None = None, code: str | None = None, **kwargs):
        """`class NotFound(CreditflowError, category="not_found")`: a kind of error, whose code
        is its category unless it names its own."""
        super().__init_subclass__(**kwargs)
        if category is not None:
            cls.category = category
            cls.default_code = code or category
        elif code is not None:
            cls.default_code = code

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        # More fields for the caller, answered beside the error (an `invoice` and its `url`, say).
        self.extra = extra or {}


class InvalidRequest(CreditflowError):
    """Input that can't be taken as it is."""


class NotFound(CreditflowError, category="not_found"):
    """What was asked for doesn't exist, or isn't the caller's to see."""


class Conflict(CreditflowError, category="conflict"):
    """The request is well formed, but the state of things refuses it now."""


class Forbidden(CreditflowError, category="forbidden"):
    """The caller may not do this."""


class PaymentFailed(CreditflowError, category="payment_failed"):
    """The gateway declined or failed to take the payment."""


class InsufficientCredits(CreditflowError, category="payment_failed", code="insufficient_credits"):
    """A spend or hold larger than the credits the customer may use for it."""
