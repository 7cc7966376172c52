"""Where a subscription is on its anchor's calendar: offsets in, instants out. Pure: no
database, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from creditflow.kit.periods import Term, credit_period, month_boundary, month_index_at
from creditflow.subscription.models import Subscription

# While a worker charges a renewal outside a transaction, the subscription's due time is
# pushed this far ahead so that no other worker picks it up.
LEASE = timedelta(minutes=5)


def set_calendar(sub: Subscription, *, term_start_offset: int, credit_offset: int) -> None:
    """Place the subscription on its anchor's calendar (current term and credit month)."""
    term = Term(sub.term)
    sub.term_start_offset = term_start_offset
    sub.term_end_offset = term_start_offset + term.months
    sub.credit_offset = credit_offset
    sub.current_term_start = month_boundary(sub.anchor, sub.term_start_offset)
    sub.current_term_end = month_boundary(sub.anchor, sub.term_end_offset)
    credit_month = credit_period(sub.anchor, credit_offset)
    sub.credit_period_start, sub.credit_period_end = credit_month.start, credit_month.end


def next_due(sub: Subscription) -> datetime | None:
    """When the worker must next act on this subscription."""
    if sub.status == "active":
        return sub.credit_period_end  # a monthly grant, or the end of the term
    if sub.status == "past_due":
        return sub.next_retry_at
    return None


def monthly_grant_due(sub: Subscription, now: datetime) -> bool:
    return sub.status == "active" and sub.credit_period_end <= now and sub.credit_period_end < sub.current_term_end


def term_end_due(sub: Subscription, now: datetime) -> bool:
    return sub.status == "active" and sub.current_term_end <= now


def current_credit_offset(sub: Subscription, now: datetime) -> int:
    """The credit month containing `now`, kept inside the current term."""
    k = month_index_at(sub.anchor, now)
    return max(sub.term_start_offset, min(k, sub.term_end_offset - 1))
