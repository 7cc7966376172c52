"""What a paid or failed invoice leads to, by the invoice's purpose.

The payment module knows nothing of subscriptions or top-ups; those modules register
handlers here. A handler runs in the same transaction that records the payment outcome, so a
charge and its effect (a started subscription, granted credits) commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from creditflow.context import Context
    from creditflow.invoicing.models import Invoice
    from creditflow.payment.models import PaymentAttempt

Handler = Callable[["Context", Session, "Invoice", "PaymentAttempt | None", datetime], None]


@dataclass(frozen=True)
class Fulfilment:
    on_paid: Handler
    on_failed: Handler


_handlers: dict[str, Fulfilment] = {}


def register(purpose: str, *, on_paid: Handler, on_failed: Handler) -> None:
    _handlers[purpose] = Fulfilment(on_paid, on_failed)


def handler_for(purpose: str) -> Fulfilment:
    _load_all()
    return _handlers[purpose]


def _load_all() -> None:
    # Importing the domain services registers their handlers.
    import creditflow.subscription.change  # noqa: F401
    import creditflow.subscription.service  # noqa: F401
    try:
        import creditflow.credits.topups  # noqa: F401
    except ImportError:  # the top-up module lands with the credit ledger
        pass
