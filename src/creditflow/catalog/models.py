"""The catalog as read from its YAML file: what is sold, and the policies that govern it.

Everything here is immutable and free of I/O: `loader` builds these objects from the file and
`rules` reasons over them. Money is an `int` of minor units, credits are `Credits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeVar

from creditflow.catalog.pricing import Cost, FeatureLimits
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, InvalidRequest
from creditflow.kit.periods import Term

FREE_PLAN_CODE = "free"
"""Reserved: the Free plan is not a `Plan` and no paid plan may take its code."""

ChangeKind = Literal["upgrade", "downgrade"]
CHANGE_KINDS: tuple[str, ...] = ("upgrade", "downgrade")

TIMINGS: tuple[str, ...] = ("immediate", "end_of_period", "immediate_support")
"""How a change may be timed, as named in the catalog's change rules.

`immediate` and `end_of_period` are open to the customer (and to support). `immediate_support`
means "immediately, but only by support" (an immediate downgrade is a support action).
A change request itself only ever says `immediate` or `end_of_period`; see
`ChangeDecision.check_timing`.
"""

PRORATIONS: tuple[str, ...] = ("time", "none")
TAX_PRICE_MODES: tuple[str, ...] = ("exclusive", "inclusive")
PLAN_CREDIT_MODES: tuple[str, ...] = ("reset", "carry_over")
SEAT_DOWNGRADE_POLICIES: tuple[str, ...] = ("refuse", "suspend_newest")
"""A change to a plan with fewer seats than the team fills: refused until members are removed,
or made with the newest members suspended."""


@dataclass(frozen=True, slots=True)
class Feature:
    """Something the host app spends credits on, named on each spend."""

    code: str
    requires_subscription: bool = False
    name: str = ""
    cost: Cost | None = field(default=None, hash=False)
    """Its price by options (catalog/pricing.py); None: the host app names each spend's amount."""

    @property
    def label(self) -> str:
        return self.name or self.code.replace("_", " ").capitalize()


@dataclass(frozen=True, slots=True)
class FreePlan:
    """What a customer without an active paid subscription gets: credits each day, no price."""

    daily_credits: Credits
    features: frozenset[str]


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    name: str
    rank: int
    monthly_credits: Credits
    features: frozenset[str]
    prices: dict[Term, int] = field(hash=False)
    """Minor units per charge of each term the plan is sold on (not per month)."""
    seats: int = 1
    """Team seats, the owner's included."""
    unlimited: dict[str, int] = field(default_factory=dict, hash=False)
    """Feature -> days free from the start of each billing period (an unlimited window)."""
    limits: dict[str, FeatureLimits] = field(default_factory=dict, hash=False)
    """Feature -> its concurrency and daily limits on this plan."""
    on_sale: bool = True
    """False: kept for the customers already on it (it renews and serves them as before), but
    no longer sold: nobody can subscribe or change to it."""

    def price(self, term: Term) -> int:
        try:
            return self.prices[Term(term)]
        except (KeyError, ValueError):
            raise InvalidRequest(
                f"plan {self.code!r} is not sold on a {term} term", code="unknown_term", param="term"
            ) from None

    @property
    def terms(self) -> tuple[Term, ...]:
        """The terms this plan is sold on, shortest first."""
        return tuple(sorted(self.prices, key=lambda term: term.months))


@dataclass(frozen=True, slots=True)
class Bundle:
    """A one-time purchase of top-up credits."""

    code: str
    name: str
    credits: Credits
    price: int
    on_sale: bool = True
    """False: no longer sold (kept in the file for the record of past purchases)."""


@dataclass(frozen=True, slots=True)
class RefundPolicy:
    """When a customer's first purchase of a plan is refundable.

    Quarterly is not in ImagineArt's published policy; we treat it like monthly (3 days), the
    stricter of the two published windows. A window of 0 days means "not refundable".
    """

    monthly_days: int = 3
    quarterly_days: int = 3
    yearly_days: int = 5
    max_credits_spent: Credits = Credits(300_000)

    def days_for(self, term: Term) -> int:
        return {
            Term.monthly: self.monthly_days,
            Term.quarterly: self.quarterly_days,
            Term.yearly: self.yearly_days,
        }[Term(term)]


@dataclass(frozen=True, slots=True)
class ChangeRule:
    """One row of the plan-change table. Conditions left as None match anything.

    The first rule whose conditions all match decides. `kind` and `timings` left empty fall back
    to the default classification for that part only, so a rule can, say, forbid immediate
    upgrades without restating what an upgrade is.
    """

    from_plan: str | None = None
    to_plan: str | None = None
    from_rank: int | None = None
    to_rank: int | None = None
    from_term: Term | None = None
    to_term: Term | None = None
    kind: ChangeKind | None = None
    timings: tuple[str, ...] = ()
    allowed: bool = True
    line: int | None = field(default=None, compare=False)
    """Where the rule is written in the catalog file, for messages."""

    def matches(self, from_plan: Plan, from_term: Term, to_plan: Plan, to_term: Term) -> bool:
        conditions = (
            (self.from_plan, from_plan.code),
            (self.to_plan, to_plan.code),
            (self.from_rank, from_plan.rank),
            (self.to_rank, to_plan.rank),
            (self.from_term, from_term),
            (self.to_term, to_term),
        )
        return all(wanted is None or wanted == actual for wanted, actual in conditions)


@dataclass(frozen=True, slots=True)
class Policies:
    change_rules: tuple[ChangeRule, ...] | Literal["default"] = "default"
    proration: Literal["time", "none"] = "time"
    plan_credits_on_immediate_change: Literal["reset", "carry_over"] = "reset"
    dunning_retry_days: tuple[int, ...] = (1, 3, 7)
    refund: RefundPolicy = RefundPolicy()
    free_credits_for_subscribers: bool = False
    quote_ttl_seconds: int = 1800
    free_reset_timezone: str | None = None
    """None: each customer's own time zone (UTC when unset), so free credits reset at the
    customer's midnight. A zone name overrides it for every customer."""
    seats_on_downgrade: Literal["refuse", "suspend_newest"] = "refuse"

    @property
    def rules(self) -> tuple[ChangeRule, ...]:
        """The explicit rules, empty when the catalog says `default`."""
        return () if self.change_rules == "default" else self.change_rules


@dataclass(frozen=True, slots=True)
class Seller:
    """Who sells: printed on every invoice. `country` (where the seller is established) decides
    which customers are abroad in the same tax union; it defaults to the tax id's prefix."""

    name: str
    address: str | None = None
    tax_id: str | None = None
    country: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "address": self.address, "tax_id": self.tax_id, "country": self.country}


@dataclass(frozen=True, slots=True)
class TaxRules:
    """The tax table: a percent per country or country-region ("US-CA"); no entry, no tax.

    `prices` says whether the catalog's prices exclude tax (tax is added on top) or include it
    (tax is the part of the price it already contains). `unions` name groups of countries
    (the EU) inside which a business customer abroad with a tax id pays no tax: reverse charge.
    """

    prices: Literal["exclusive", "inclusive"] = "exclusive"
    unions: dict[str, frozenset[str]] = field(default_factory=dict, hash=False)
    rates: dict[str, Decimal] = field(default_factory=dict, hash=False)

    def rate_for(self, country: str | None, region: str | None = None) -> tuple[str, Decimal] | None:
        """The place taxed for and its percent: the region's own rate first, else the country's."""
        if not country:
            return None
        if region:
            place = f"{country}-{region}"
            if place in self.rates:
                return place, self.rates[place]
        if country in self.rates:
            return country, self.rates[country]
        return None

    def same_union(self, one: str | None, other: str | None) -> bool:
        return bool(one and other) and any(one in members and other in members for members in self.unions.values())


@dataclass(frozen=True, slots=True, eq=False)
class Catalog:
    currency: str
    free: FreePlan
    plans: dict[str, Plan]
    bundles: dict[str, Bundle]
    features: dict[str, Feature]
    policies: Policies
    source: str
    """The file it was loaded from (or `<string>`), for messages."""
    seller: Seller | None = None
    taxes: TaxRules = TaxRules()

    def plan(self, code: str) -> Plan:
        return _known(self.plans, code, "plan")

    def bundle(self, code: str) -> Bundle:
        return _known(self.bundles, code, "bundle")

    def feature(self, code: str) -> Feature:
        return _known(self.features, code, "feature")

    def plan_for_sale(self, code: str) -> Plan:
        """The plan to sell (a subscription or a change to it), refused when taken off sale."""
        return _on_sale(self.plan(code), code, "plan")

    def bundle_for_sale(self, code: str) -> Bundle:
        return _on_sale(self.bundle(code), code, "bundle")

    def term(self, value: str | Term) -> Term:
        """Read a term name from a request."""
        if isinstance(value, str):
            try:
                return Term(value)
            except ValueError:
                pass
        expected = ", ".join(term.value for term in Term)
        raise InvalidRequest(
            f"unknown term {value!r} (expected one of: {expected})", code="unknown_term", param="term"
        )

    def plans_by_rank(self) -> list[Plan]:
        """Paid plans, lowest tier first."""
        return sorted(self.plans.values(), key=lambda plan: plan.rank)


_Item = TypeVar("_Item", Plan, Bundle, Feature)
_ForSale = TypeVar("_ForSale", Plan, Bundle)


def _known(items: dict[str, _Item], code: str, what: str) -> _Item:
    """The catalog's `what` (plan, bundle, feature) of this code; a code it doesn't have (or
    one that isn't even a string) is the request's mistake: `unknown_<what>`."""
    try:
        return items[code]
    except (KeyError, TypeError):
        raise InvalidRequest(f"unknown {what} {code!r}", code=f"unknown_{what}", param=what) from None


def _on_sale(item: _ForSale, code: str, what: str) -> _ForSale:
    if not item.on_sale:
        raise Conflict(f"{what} {code!r} is no longer sold", code=f"{what}_not_on_sale", param=what)
    return item
