"""The refund policy, pure: is this charge refundable on the customer's request?

Default, as ImagineArt's: the first purchase of a plan is refundable within 3 days (monthly,
quarterly) or 5 days (yearly) if at most 300 credits were spent since. Support can refund any
charge regardless; this only says what the customer is entitled to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from creditflow.catalog.models import RefundPolicy
from creditflow.kit.credits import Credits
from creditflow.kit.periods import Term


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str


def refund_eligibility(
    policy: RefundPolicy,
    *,
    purpose: str,
    status: str,
    term: str | None,
    first_purchase: bool,
    paid_at: datetime | None,
    credits_spent_since: Credits,
    now: datetime,
) -> Eligibility:
    if status == "refunded":
        return Eligibility(False, "The invoice has already been refunded.")
    if status != "paid" or paid_at is None:
        return Eligibility(False, "Only a paid invoice can be refunded.")
    if purpose == "renewal":
        return Eligibility(False, "Renewals are not refundable under the refund policy.")
    if purpose != "subscription_create" or term is None:
        return Eligibility(False, "Only the first purchase of a plan is refundable under the refund policy.")
    if not first_purchase:
        return Eligibility(False, "Only the customer's first purchase of a plan is refundable.")
    days = policy.days_for(Term(term))
    if days <= 0:
        return Eligibility(False, f"{Term(term).value.capitalize()} plans are not refundable.")
    deadline = paid_at + timedelta(days=days)
    if now >= deadline:
        return Eligibility(False, f"The {days}-day refund window ended on {deadline:%Y-%m-%d %H:%M} UTC.")
    if credits_spent_since > policy.max_credits_spent:
        return Eligibility(False, f"{credits_spent_since} credits were spent since the purchase; "
                                  f"at most {policy.max_credits_spent} are allowed.")
    return Eligibility(True, f"First purchase within {days} days with {credits_spent_since} credits spent.")
