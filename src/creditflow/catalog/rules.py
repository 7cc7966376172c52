"""Classify a plan change as an upgrade or a downgrade, and say how it may be timed.

Pure: it reads the catalog and nothing else. The policy is data, as in Kill Bill: the catalog's
`policies.change_rules` is an ordered table and the first matching rule decides. When the table
is `default`, empty, or no rule matches, the default rule below decides; so there is always an
answer and a catalog only needs to list its exceptions.

Default rule: a change is an upgrade when the target plan ranks higher, or has the same rank and
a longer term; otherwise it is a downgrade. Ranks are unique, so "same rank" means "same plan".
Default timings:
- upgrade: `immediate` (the default, listed first) or `end_of_period`;
- downgrade: `end_of_period` for the customer, `immediate_support` for support only
  (a self-service downgrade waits for the end of the term).
"""

from __future__ import annotations

from dataclasses import dataclass

from creditflow.catalog.models import Catalog, ChangeKind, Plan
from creditflow.kit.errors import Conflict, Forbidden, InvalidRequest
from creditflow.kit.periods import Term

DEFAULT_TIMINGS: dict[str, tuple[str, ...]] = {
    "upgrade": ("immediate", "end_of_period"),
    "downgrade": ("end_of_period", "immediate_support"),
}

REQUEST_TIMINGS: tuple[str, ...] = ("immediate", "end_of_period")
"""What a change request may ask for; `immediate_support` is catalog vocabulary only."""


@dataclass(frozen=True, slots=True)
class ChangeDecision:
    kind: ChangeKind
    timings: tuple[str, ...]
    """Allowed timings, the default first, in the catalog's vocabulary (see `models.TIMINGS`)."""
    rule: int | None = None
    """Index of the rule in `policies.change_rules` that decided; None when the default did."""

    def allows(self, timing: str, *, support: bool = False) -> bool:
        if timing in self.timings:
            return True
        return support and timing == "immediate" and "immediate_support" in self.timings

    def check_timing(self, timing: str, *, support: bool = False) -> str:
        """Validate the timing a request asks for; returns it, or raises the error to show."""
        if timing not in REQUEST_TIMINGS:
            raise InvalidRequest(
                f"timing must be one of: {', '.join(REQUEST_TIMINGS)}, got {timing!r}", param="timing"
            )
        if self.allows(timing, support=support):
            return timing
        if timing == "immediate" and "immediate_support" in self.timings:
            raise Forbidden(f"an immediate {self.kind} is a support action", code="support_only", param="timing")
        offered = ", ".join(t for t in self.timings if t in REQUEST_TIMINGS) or "none"
        raise Conflict(
            f"this {self.kind} cannot take effect {timing.replace('_', ' ')} (allowed: {offered})",
            code="timing_not_allowed",
            param="timing",
        )

    @property
    def default_timing(self) -> str | None:
        """The timing to use when the customer asks for none: the first self-service one."""
        return next((t for t in self.timings if t in REQUEST_TIMINGS), None)


def default_kind(from_plan: Plan, from_term: Term, to_plan: Plan, to_term: Term) -> ChangeKind:
    if to_plan.rank != from_plan.rank:
        return "upgrade" if to_plan.rank > from_plan.rank else "downgrade"
    return "upgrade" if to_term.months > from_term.months else "downgrade"


def classify_change(
    catalog: Catalog, from_plan: str, from_term: Term | str, to_plan: str, to_term: Term | str
) -> ChangeDecision:
    """Decide what changing from (plan, term) to (plan, term) is and how it may be timed.

    Raises `Conflict("same_plan")` for no change, `Conflict("change_not_allowed")` when a rule
    forbids it, and `InvalidRequest` for an unknown plan or a term the target plan isn't sold on.
    """
    current, target = catalog.plan(from_plan), catalog.plan(to_plan)
    from_term, to_term = catalog.term(from_term), catalog.term(to_term)
    target.price(to_term)  # refuses a term the target plan is not sold on
    if current.code == target.code and from_term == to_term:
        raise Conflict(
            f"already on {current.name} ({from_term.value}); choose another plan or term",
            code="same_plan",
            param="plan",
        )

    for index, rule in enumerate(catalog.policies.rules):
        if not rule.matches(current, from_term, target, to_term):
            continue
        if not rule.allowed:
            raise Conflict(
                f"changing from {current.name} ({from_term.value}) to {target.name} ({to_term.value}) "
                "is not allowed",
                code="change_not_allowed",
                param="plan",
            )
        kind = rule.kind or default_kind(current, from_term, target, to_term)
        return ChangeDecision(kind, rule.timings or DEFAULT_TIMINGS[kind], rule=index)

    kind = default_kind(current, from_term, target, to_term)
    return ChangeDecision(kind, DEFAULT_TIMINGS[kind])

