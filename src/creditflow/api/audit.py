"""Support actions made through the API are audited as the console's are: who (the support
key), when, what, why, and how it ended.

The routes whose use case takes `support=` or needs a support key (plan changes and
cancellations made with a support key, refunds, credit grants) run their work through
`as_support`. A call with a server key runs as it is: it can't do a support action. A replay
of the same Idempotency-Key returns the first response without running the route, so it is
not audited twice.
"""

from __future__ import annotations

from creditflow.auth.service import Principal
from creditflow.invoicing.service import get_invoice
from creditflow.kit.errors import NotFound
from creditflow.subscription.service import read_subscription
from creditflow.support.service import api_staff, run_audited


def as_support(ctx, caller: Principal, work, *, action: str, summary: str, done: str | None = None,
               reason: str | None, customer_id: str | None, details: dict | None = None, describe=None):
    """`work()`, with an audit record when the caller holds a support key. The reason is the
    request's own (`reason` where the API takes one); a request without one is recorded as
    giving none: the API doesn't require a reason where its contract doesn't."""
    if not caller.is_support:
        return work()
    return run_audited(ctx, api_staff(caller.key_id), action=action, summary=summary, done=done, reason=reason,
                       customer_id=customer_id, work=work, details=details, describe=describe,
                       reason_required=False)


def subscription_customer(ctx, subscription_id: str) -> str | None:
    """Whose subscription it is, for the audit record (None for a made-up id: the action then
    fails with its own 404, and the record says so)."""
    try:
        return ctx.db.read(lambda session: read_subscription(session, subscription_id).customer_id)
    except NotFound:
        return None


def invoice_customer(ctx, invoice_id: str) -> str | None:
    try:
        return ctx.db.read(lambda session: get_invoice(session, invoice_id).customer_id)
    except NotFound:
        return None


def credits_text(value) -> str:
    """Credits with thousands separators, as the console writes them: "1,500", "73.5"."""
    whole, dot, frac = str(value).partition(".")
    return f"{int(whole):,}{dot}{frac}"
