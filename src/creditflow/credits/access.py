"""Pure rules: what a customer may spend on a feature, and when their free credits reset.

Who can use a feature and with which lots:
- a `requires_subscription` feature needs an active paid subscription, and free credits never
  pay for it;
- a feature must be in the customer's plan, or in Free's features when they have no active
  paid subscription; so top-up credits left after a subscription ends pay for what Free allows
  and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from creditflow.catalog.models import Catalog, Feature
from creditflow.kit.clock import utc
from creditflow.kit.errors import Forbidden
from creditflow.kit.ids import derived_id

ALL_KINDS = frozenset({"free", "subscription", "top_up", "promo", "earned"})  # earned: received by a transfer
PAID_KINDS = ALL_KINDS - {"free"}


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a customer stands for credits: their active paid plan, if any."""

    plan: str | None  # the plan of an active paid subscription, else None (Free)

    @property
    def subscribed(self) -> bool:
        return self.plan is not None


def lot_kinds_for(catalog: Catalog, standing: Standing, feature: Feature) -> frozenset[str]:
    """The lot kinds that may pay for `feature`, or Forbidden with a stable code."""
    if feature.requires_subscription and not standing.subscribed:
        raise Forbidden(f"{feature.label} needs an active paid subscription",
                        code="subscription_required", param="feature")
    features = catalog.plan(standing.plan).features if standing.subscribed else catalog.free.features
    if feature.code not in features:
        plan = catalog.plan(standing.plan).name if standing.subscribed else "Free"
        raise Forbidden(f"{feature.label} is not included in the {plan} plan",
                        code="feature_not_in_plan", param="feature")
    return PAID_KINDS if feature.requires_subscription else ALL_KINDS


def gets_free_credits(catalog: Catalog, standing: Standing) -> bool:
    if not catalog.free.daily_credits:
        return False
    return not standing.subscribed or catalog.policies.free_credits_for_subscribers


@dataclass(frozen=True, slots=True)
class FreeDay:
    """The customer-local day that contains an instant: when it starts and ends (in UTC)."""

    day: date
    starts_at: datetime
    ends_at: datetime

    @property
    def key(self) -> str:
        return self.day.isoformat()

    def lot_id(self, customer_id: str) -> str:
        """The id of the customer's free credits lot for this day, known before it exists."""
        return derived_id("lot", self.starts_at, customer_id, "free", self.key)


_last_day: dict[str, FreeDay] = {}  # per time zone, the day last asked for: every spend asks


def free_day(now: datetime, timezone: str) -> FreeDay:
    """Free credits reset at 00:00 local time. A midnight that a DST jump skips maps to the
    first instant of the new day, as zoneinfo resolves non-existent local times forward."""
    now = utc(now)
    cached = _last_day.get(timezone)
    if cached is not None and cached.starts_at <= now < cached.ends_at:
        return cached
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    result = FreeDay(today, _midnight(today, zone), _midnight(today + timedelta(days=1), zone))
    _last_day[timezone] = result
    return result


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return utc(datetime.combine(day, time(0), tzinfo=zone))


def reset_timezone(catalog: Catalog, customer_timezone: str | None) -> str:
    return catalog.policies.free_reset_timezone or customer_timezone or "UTC"
