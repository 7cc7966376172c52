"""What a customer may do with their subscription right now, and why not; when their plan
credits next refresh; what the rest of the term is worth.

Read-only and pure (they take the subscription and `now`). The use cases call the same
predicates where they check (cancel, resume, change, schedule, top-up), and the billing page
and the console render their answers, so a page can never offer what the service refuses,
nor hide what it allows.

Each refusal carries the error the use case raises (`code`, `message`: the API's words) and a
sentence for the customer (`sentence`: the page's words).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from creditflow.catalog.models import Catalog
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict
from creditflow.kit.periods import Period
from creditflow.subscription.models import Subscription
from creditflow.subscription.proration import split_term


@dataclass(frozen=True)
class Refusal:
    """Why an action can't be taken now."""

    code: str
    message: str  # the use case's error message
    sentence: str  # the same, in plain words for the customer

    def error(self, *, param: str | None = None) -> Conflict:
        return Conflict(self.message, code=self.code, param=param)


def raise_if(refusal: Refusal | None, *, param: str | None = None) -> None:
    """What a use case does with a predicate's answer."""
    if refusal is not None:
        raise refusal.error(param=param)


CHANGES_PAUSED = Refusal(
    "subscription_not_active", "only an active subscription can change plan",
    "Plan changes are available again once your overdue payment goes through.")
CHANGES_NEED_ACTIVE = Refusal(
    "subscription_not_active", "only an active subscription can change plan",
    "Plan changes need an active subscription.")
CANCEL_NEEDS_ACTIVE = Refusal(
    "subscription_not_active", "only an active subscription can be cancelled at the period end",
    "Only an active subscription can be cancelled.")
CANCEL_WHILE_UPGRADE_SCHEDULED = Refusal(
    "scheduled_upgrade_pending",
    "An upgrade is scheduled for the end of the period; cancel the scheduled change first.",
    "You can't cancel while an upgrade is scheduled. Cancel the scheduled upgrade first, then cancel your "
    "subscription.")
RESUME_ENDED = Refusal(
    "subscription_ended", "the subscription has ended",
    "Your subscription has ended. Choose a plan to subscribe again.")
RESUME_NOT_CANCELLING = Refusal(
    "not_cancelling", "the subscription is not set to cancel",
    "Your subscription isn't set to cancel, so there's nothing to resume.")
SCHEDULE_WHILE_CANCELLING = Refusal(
    "subscription_canceling", "the subscription is set to cancel; resume it before scheduling a change",
    "Your subscription is set to cancel, so nothing can be scheduled for the end of the period. Resume it "
    "first, or upgrade now.")
TOP_UP_ON_FREE = Refusal(
    "subscription_required", "credit top-ups need an active subscription",
    "Credit top-ups are for subscribers. Choose a plan to buy extra credits.")
TOP_UP_WHILE_PAST_DUE = Refusal(
    "subscription_required", "credit top-ups need an active subscription",
    "Credit top-ups are paused while a payment is overdue. They're back once it goes through.")


# --- the predicates the use cases check ---------------------------------------------------------


def change_refusal(sub: Subscription | None) -> Refusal | None:
    """Any plan change, immediate or scheduled, needs an active subscription."""
    if sub is not None and sub.status == "active":
        return None
    return CHANGES_PAUSED if sub is not None and sub.status == "past_due" else CHANGES_NEED_ACTIVE


def schedule_refusal(sub: Subscription) -> Refusal | None:
    """A change at the end of the period: there is no end-of-period renewal to change while the
    subscription is set to cancel (an immediate upgrade is still possible, and resumes it)."""
    return SCHEDULE_WHILE_CANCELLING if sub.cancel_at_period_end else None


def cancel_refusal(sub: Subscription) -> Refusal | None:
    """Cancelling at the period end. A scheduled downgrade is dropped by it; a scheduled upgrade
    must be cancelled first (the customer chose to pay more later; cancelling would silently
    undo that)."""
    if sub.status != "active":
        return CANCEL_NEEDS_ACTIVE
    if sub.scheduled_kind == "upgrade":
        return CANCEL_WHILE_UPGRADE_SCHEDULED
    return None


def resume_refusal(sub: Subscription, now: datetime) -> Refusal | None:
    """Resuming undoes a pending end, until the term ends (even if the worker hasn't ended it yet)."""
    if sub.status == "ended" or (sub.cancel_at_period_end and now >= sub.current_term_end):
        return RESUME_ENDED
    if not sub.cancel_at_period_end:
        return RESUME_NOT_CANCELLING
    return None


def top_up_refusal(sub: Subscription | None) -> Refusal | None:
    """A bundle can be bought on an active subscription (one set to cancel included), not on
    Free nor while a payment is overdue."""
    if sub is None or sub.status not in ("active", "past_due"):
        return TOP_UP_ON_FREE
    if sub.status == "past_due":
        return TOP_UP_WHILE_PAST_DUE
    return None


# --- all of them at once, for a page ------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """One action: allowed, or refused and why."""

    refusal: Refusal | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @property
    def reason(self) -> str | None:
        return self.refusal.sentence if self.refusal else None


@dataclass(frozen=True)
class AllowedActions:
    cancel: Allowed
    resume: Allowed
    change: Allowed  # any plan change
    end_of_period_change: Allowed  # a change scheduled for the end of the term
    top_up: Allowed


def allowed_actions(sub: Subscription | None, now: datetime) -> AllowedActions:
    """Which of cancel, resume, change plan, schedule a change and buy a top-up the customer
    (on `sub`, their live subscription, or None on Free) can do at `now`, each with why not."""
    change = change_refusal(sub)
    if sub is None:
        return AllowedActions(cancel=Allowed(CANCEL_NEEDS_ACTIVE), resume=Allowed(RESUME_NOT_CANCELLING),
                              change=Allowed(change), end_of_period_change=Allowed(change),
                              top_up=Allowed(top_up_refusal(None)))
    return AllowedActions(
        cancel=Allowed(cancel_refusal(sub)),
        resume=Allowed(resume_refusal(sub, now)),
        change=Allowed(change),
        end_of_period_change=Allowed(change or schedule_refusal(sub)),
        top_up=Allowed(top_up_refusal(sub)),
    )


# --- plan credits and the value of the term -----------------------------------------------------


@dataclass(frozen=True)
class NextPlanGrant:
    """When the plan credits are next set to an allotment, to how many, and by which plan."""

    at: datetime
    credits: Credits
    plan: str
    after_change: bool  # the scheduled change applies first (it takes effect then)


def next_plan_grant(catalog: Catalog, sub: Subscription | None) -> NextPlanGrant | None:
    """The next monthly grant of this term, or the renewal's grant, which follows a scheduled
    change (the renewal applies it first). None when no grant is coming: on Free, while a
    payment is overdue (no new plan credits until it goes through), or when the term ends a
    cancelled subscription."""
    if sub is None or sub.status != "active":
        return None
    if sub.credit_period_end < sub.current_term_end:
        return NextPlanGrant(sub.credit_period_end, catalog.plan(sub.plan).monthly_credits, sub.plan, False)
    if sub.cancel_at_period_end:
        return None
    plan = sub.scheduled_plan or sub.plan
    return NextPlanGrant(sub.current_term_end, catalog.plan(plan).monthly_credits, plan,
                         sub.scheduled_plan is not None)


def unused_value(sub: Subscription | None, now: datetime) -> int:
    """What the rest of the current term is worth (minor units), prorated to the second: what an
    immediate change credits for the time not used, or what ending it at once can refund."""
    if sub is None or sub.status != "active":
        return 0
    return split_term(sub.term_price, Period(sub.current_term_start, sub.current_term_end), now).unused
