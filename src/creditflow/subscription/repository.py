"""Queries about subscriptions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.kit.db.rows import get_or_not_found, locking
from creditflow.subscription.models import LIVE_STATUSES, Subscription


def get_subscription(session: Session, subscription_id: str, *, for_update: bool = False) -> Subscription:
    return get_or_not_found(session, Subscription, subscription_id, noun="subscription", param="subscription",
                            exists=lambda sub: sub.status != "incomplete", **locking(for_update))


def live_subscription(session: Session, customer_id: str, *, include_incomplete: bool = False) -> Subscription | None:
    statuses = LIVE_STATUSES if include_incomplete else ("active", "past_due")
    return session.scalar(
        select(Subscription).where(Subscription.customer_id == customer_id, Subscription.status.in_(statuses))
    )


def current_plan_code(session: Session, customer_id: str) -> str:
    """The plan the customer is on: their live subscription's, or `free`."""
    sub = live_subscription(session, customer_id)
    return sub.plan if sub is not None and sub.status == "active" else "free"
