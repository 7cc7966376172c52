"""A subscription's status as one state machine, and the one place that records its changes.

    incomplete --paid--> active --renewal declined--> past_due --retry paid--> active
                           |                             |
                           +--------> ended <------------+   (term over, refunded, retries exhausted,
                                                              ended at once by support)

An incomplete subscription whose first payment fails is deleted, not moved: it never began.
Every change of a subscription (status or not) goes through `record_change`, which bumps its
`version` (a quote remembers it to notice it went stale) and records the event. A subscription
starts at version 0, when its first payment makes it active.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from creditflow.context import Context
from creditflow.credits.grants import set_active_plan
from creditflow.events.outbox import record_event
from creditflow.kit.errors import Conflict
from creditflow.subscription.models import Subscription
from creditflow.team.service import on_subscription_change

TRANSITIONS: dict[str, frozenset[str]] = {
    "incomplete": frozenset({"active"}),
    "active": frozenset({"past_due", "ended"}),
    "past_due": frozenset({"active", "ended"}),
    "ended": frozenset(),
}


class IllegalTransition(Conflict, code="illegal_transition"):
    """A status change the subscription's state machine doesn't allow."""


def check_transition(current: str, to: str) -> None:
    if to not in TRANSITIONS[current]:
        raise IllegalTransition(f"a subscription can't go from {current} to {to}", param="status")


def record_change(ctx: Context, session: Session, sub: Subscription, *, now: datetime, event: str | None = None,
                  data: dict[str, Any] | None = None, status: str | None = None) -> None:
    """Move `sub` to `status` (if given and different) when the machine allows it, bump its
    version, tell the credit ledger which plan the customer's spends may use, and record `event`
    with `data` in the same transaction."""
    starting = sub.status == "incomplete"
    if status is not None and status != sub.status:
        check_transition(sub.status, status)
        sub.status = status
    if not starting:  # a subscription that just started is at its first version, 0
        sub.version += 1
    sub.updated_at = now
    set_active_plan(ctx, session, sub.customer_id, sub.plan if sub.status == "active" else None)
    on_subscription_change(ctx, session, sub.customer_id, status=sub.status, plan=sub.plan, anchor=sub.anchor, now=now)
    if event is not None:
        record_event(session, event, customer_id=sub.customer_id, now=now, data=data or {})
