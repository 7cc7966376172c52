"""The refund policy, pure: who may have their money back, by the policy table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.catalog.models import RefundPolicy
from creditflow.kit.credits import Credits
from creditflow.refund.policy import refund_eligibility


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


PAID = utc(2026, 3, 10, 10)
DEFAULT = RefundPolicy()


def ask(*, term="monthly", spent="0", at=PAID + timedelta(hours=1), purpose="subscription_create",
        status="paid", first_purchase=True, paid_at=PAID, policy=DEFAULT):
    return refund_eligibility(policy, purpose=purpose, status=status, term=term, first_purchase=first_purchase,
                              paid_at=paid_at, credits_spent_since=Credits.parse(spent), now=at)


@pytest.mark.parametrize(
    ("term", "spent", "at", "eligible"),
    [
        # A monthly first purchase at 2026-03-10 10:00, asked 2026-03-13 09:00.
        ("monthly", "250", utc(2026, 3, 13, 9), True),
        ("monthly", "301", utc(2026, 3, 13, 9), False),
        ("monthly", "300", utc(2026, 3, 13, 9), True),  # "at most 300"
        ("monthly", "300.001", utc(2026, 3, 13, 9), False),
        # The window is 3 x 24 hours from the payment, half-open.
        ("monthly", "0", utc(2026, 3, 13, 9, 59, 59), True),
        ("monthly", "0", utc(2026, 3, 13, 10), False),
        ("monthly", "0", PAID, True),
        # Yearly: 5 days. Day 5 is the fifth 24 hours after the payment, day 6 the sixth.
        ("yearly", "120", PAID + timedelta(days=4), True),
        ("yearly", "120", PAID + timedelta(days=4, hours=23, minutes=59), True),
        ("yearly", "120", PAID + timedelta(days=5), False),
        ("yearly", "120", PAID + timedelta(days=5, hours=1), False),
        ("yearly", "301", PAID + timedelta(days=1), False),
        # Quarterly isn't in ImagineArt's policy: treated as monthly (3 days).
        ("quarterly", "0", utc(2026, 3, 13, 9), True),
        ("quarterly", "0", utc(2026, 3, 13, 10), False),
    ],
)
def test_first_purchase_window_and_credits(term, spent, at, eligible):
    result = ask(term=term, spent=spent, at=at)
    assert result.eligible is eligible, result.reason


@pytest.mark.parametrize(
    ("paid_at", "at", "eligible"),
    [
        # Across a month end and a leap day, the window is 72 hours all the same.
        (utc(2026, 1, 31, 10), utc(2026, 2, 3, 9, 59), True),
        (utc(2026, 1, 31, 10), utc(2026, 2, 3, 10), False),
        (utc(2028, 2, 28, 23), utc(2028, 3, 2, 22, 59), True),
        (utc(2028, 2, 28, 23), utc(2028, 3, 2, 23), False),
    ],
)
def test_the_window_is_counted_in_hours_across_month_ends(paid_at, at, eligible):
    assert ask(paid_at=paid_at, at=at).eligible is eligible


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"purpose": "renewal"}, "Renewals are not refundable under the refund policy."),
        ({"purpose": "plan_change"}, "Only the first purchase of a plan is refundable under the refund policy."),
        ({"purpose": "top_up", "term": None},
         "Only the first purchase of a plan is refundable under the refund policy."),
        ({"first_purchase": False}, "Only the customer's first purchase of a plan is refundable."),
        ({"status": "refunded"}, "The invoice has already been refunded."),
        ({"status": "open", "paid_at": None}, "Only a paid invoice can be refunded."),
        ({"status": "void", "paid_at": None}, "Only a paid invoice can be refunded."),
        ({"spent": "301"}, "301 credits were spent since the purchase; at most 300 are allowed."),
        ({"at": utc(2026, 3, 13, 10)}, "The 3-day refund window ended on 2026-03-13 10:00 UTC."),
    ],
)
def test_what_the_customer_is_told_when_not_eligible(kwargs, reason):
    result = ask(**kwargs)
    assert (result.eligible, result.reason) == (False, reason)


def test_what_the_customer_is_told_when_eligible():
    result = ask(spent="250", at=utc(2026, 3, 13, 9))
    assert (result.eligible, result.reason) == (True, "First purchase within 3 days with 250 credits spent.")


def test_the_policy_is_configuration():
    generous = RefundPolicy(monthly_days=7, quarterly_days=0, yearly_days=14, max_credits_spent=Credits.whole(1000))
    assert ask(policy=generous, at=PAID + timedelta(days=6), spent="999").eligible
    assert not ask(policy=generous, at=PAID + timedelta(days=7)).eligible
    assert ask(policy=generous, term="yearly", at=PAID + timedelta(days=13)).eligible
    closed = ask(policy=generous, term="quarterly", at=PAID + timedelta(minutes=1))
    assert (closed.eligible, closed.reason) == (False, "Quarterly plans are not refundable.")


@given(
    term=st.sampled_from(["monthly", "quarterly", "yearly"]),
    spent=st.integers(min_value=0, max_value=1_000_000),
    fewer=st.integers(min_value=0, max_value=1_000_000),
    elapsed=st.integers(min_value=0, max_value=10 * 86_400),
    earlier=st.integers(min_value=0, max_value=10 * 86_400),
)
def test_asking_sooner_having_spent_less_is_never_worse(term, spent, fewer, elapsed, earlier):
    later = ask(term=term, spent=str(Credits(spent)), at=PAID + timedelta(seconds=elapsed))
    sooner = ask(term=term, spent=str(Credits(max(0, spent - fewer))),
                 at=PAID + timedelta(seconds=max(0, elapsed - earlier)))
    assert sooner.eligible or not later.eligible
