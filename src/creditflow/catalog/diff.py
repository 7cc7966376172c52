"""What a new catalog file changes compared with the one in use, and whom it strands.

Pure: two `Catalog`s in, a list of `CatalogChange`s out, in a stable order (plans by code, then
bundles, features, the Free plan, policies). How many subscriptions each change touches is the
database's business (`subscription.cohorts`); `stranded` only needs those counts, so that
`creditflow catalog diff` and the service's start share one definition of "a file that drops
something a subscriber is still on".

A subscriber is stranded when their plan (or the plan a scheduled change moves them to) is
gone from the file, or when that plan is no longer sold on their term at all: nothing could
renew them. A price edit strands nobody: each subscription keeps the price it was sold at.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from creditflow.catalog.models import Catalog, Plan
from creditflow.kit.money import format_money
from creditflow.kit.periods import Term

# Plan/term pairs mapped to how many live subscriptions are on them.
Counts = Mapping[tuple[str, str], int]


@dataclass(frozen=True)
class CatalogChange:
    """One difference. `kind` is stable (for scripts); `what` names the thing changed."""

    kind: str
    what: str
    old: Any = None
    new: Any = None
    plan: str | None = None  # the plan it concerns, to count its subscribers
    term: str | None = None  # and the term, when only one term is concerned

    def sentence(self, currency: str) -> str:
        def money(amount: int | None) -> str:
            return "-" if amount is None else format_money(amount, currency)

        says = {
            "plan_added": lambda: f"{self.what}: added",
            "plan_removed": lambda: f"{self.what}: removed",
            "term_added": lambda: f"{self.what}: now sold at {money(self.new)}",
            "term_removed": lambda: f"{self.what}: no longer sold on this term (was {money(self.old)})",
            "repriced": lambda: f"{self.what}: price {money(self.old)} -> {money(self.new)}",
            "off_sale": lambda: f"{self.what}: taken off sale",
            "on_sale": lambda: f"{self.what}: back on sale",
            "credits_changed": lambda: f"{self.what}: credits {self.old} -> {self.new}",
            "features_changed": lambda: f"{self.what}: features {self.old} -> {self.new}",
            "renamed": lambda: f"{self.what}: name {self.old!r} -> {self.new!r}",
            "rank_changed": lambda: f"{self.what}: rank {self.old} -> {self.new}",
            "seats_changed": lambda: f"{self.what}: seats {self.old} -> {self.new}",
            "bundle_added": lambda: f"{self.what}: added ({self.new})",
            "bundle_removed": lambda: f"{self.what}: removed",
            "bundle_repriced": lambda: f"{self.what}: price {money(self.old)} -> {money(self.new)}",
            "feature_added": lambda: f"{self.what}: added",
            "feature_removed": lambda: f"{self.what}: removed",
            "feature_changed": lambda: f"{self.what}: {self.old} -> {self.new}",
            "currency_changed": lambda: f"{self.what}: {self.old} -> {self.new}",
            "free_changed": lambda: f"{self.what}: {self.old} -> {self.new}",
            "policy_changed": lambda: f"{self.what}: {self.old} -> {self.new}",
        }
        return says[self.kind]() if self.kind in says else f"{self.what}: {self.kind}"


@dataclass(frozen=True)
class Stranded:
    """Live subscriptions on a plan and term the new file no longer has."""

    plan: str
    term: str
    subscriptions: int
    plan_removed: bool  # the whole plan is gone (else only this term)

    def sentence(self) -> str:
        gone = f"plan {self.plan!r} is not in the catalog" if self.plan_removed \
            else f"plan {self.plan!r} is no longer sold on a {self.term} term"
        who = f"{self.subscriptions} live subscription{'s' if self.subscriptions != 1 else ''}"
        return f"{gone}, but {who} {'are' if self.subscriptions != 1 else 'is'} on {self.plan} ({self.term})"


def diff_catalogs(old: Catalog, new: Catalog) -> list[CatalogChange]:
    changes: list[CatalogChange] = []
    if old.currency != new.currency:
        changes.append(CatalogChange("currency_changed", "currency", old.currency, new.currency))
    for code in sorted(old.plans.keys() | new.plans.keys()):
        before, after = old.plans.get(code), new.plans.get(code)
        if before is None:
            changes.append(CatalogChange("plan_added", f"plan {code}", plan=code))
        elif after is None:
            changes.append(CatalogChange("plan_removed", f"plan {code}", plan=code))
        else:
            changes += _plan_changes(before, after)
    for code in sorted(old.bundles.keys() | new.bundles.keys()):
        before, after = old.bundles.get(code), new.bundles.get(code)
        what = f"bundle {code}"
        if before is None:
            changes.append(CatalogChange("bundle_added", what, new=f"{after.credits} credits"))
        elif after is None:
            changes.append(CatalogChange("bundle_removed", what))
        else:
            if before.price != after.price:
                changes.append(CatalogChange("bundle_repriced", what, before.price, after.price))
            if before.credits != after.credits:
                changes.append(CatalogChange("credits_changed", what, str(before.credits), str(after.credits)))
            if before.on_sale != after.on_sale:
                changes.append(CatalogChange("on_sale" if after.on_sale else "off_sale", what))
            if before.name != after.name:
                changes.append(CatalogChange("renamed", what, before.name, after.name))
    for code in sorted(old.features.keys() | new.features.keys()):
        before, after = old.features.get(code), new.features.get(code)
        what = f"feature {code}"
        if before is None:
            changes.append(CatalogChange("feature_added", what))
        elif after is None:
            changes.append(CatalogChange("feature_removed", what))
        elif before.requires_subscription != after.requires_subscription:
            changes.append(CatalogChange("feature_changed", f"{what} requires_subscription",
                                         before.requires_subscription, after.requires_subscription))
    if old.free.daily_credits != new.free.daily_credits:
        changes.append(CatalogChange("free_changed", "free daily_credits", str(old.free.daily_credits),
                                     str(new.free.daily_credits)))
    if old.free.features != new.free.features:
        changes.append(CatalogChange("free_changed", "free features", _listed(old.free.features),
                                     _listed(new.free.features)))
    for field in fields(old.policies):
        before, after = getattr(old.policies, field.name), getattr(new.policies, field.name)
        if before != after:
            changes.append(CatalogChange("policy_changed", f"policies.{field.name}", _shown(before), _shown(after)))
    return changes


def _plan_changes(before: Plan, after: Plan) -> list[CatalogChange]:
    code, what = after.code, f"plan {after.code}"
    changes: list[CatalogChange] = []
    for term in sorted(before.prices.keys() | after.prices.keys(), key=lambda t: t.months):
        old_price, new_price = before.prices.get(term), after.prices.get(term)
        here = f"{what} {Term(term).value}"
        if old_price is None:
            changes.append(CatalogChange("term_added", here, new=new_price, plan=code, term=term.value))
        elif new_price is None:
            changes.append(CatalogChange("term_removed", here, old=old_price, plan=code, term=term.value))
        elif old_price != new_price:
            changes.append(CatalogChange("repriced", here, old_price, new_price, plan=code, term=term.value))
    if before.on_sale != after.on_sale:
        changes.append(CatalogChange("on_sale" if after.on_sale else "off_sale", what, plan=code))
    if before.monthly_credits != after.monthly_credits:
        changes.append(CatalogChange("credits_changed", f"{what} monthly_credits", str(before.monthly_credits),
                                     str(after.monthly_credits), plan=code))
    if before.features != after.features:
        changes.append(CatalogChange("features_changed", what, _listed(before.features), _listed(after.features),
                                     plan=code))
    if before.name != after.name:
        changes.append(CatalogChange("renamed", what, before.name, after.name, plan=code))
    if before.rank != after.rank:
        changes.append(CatalogChange("rank_changed", what, before.rank, after.rank, plan=code))
    if getattr(before, "seats", 1) != getattr(after, "seats", 1):
        changes.append(CatalogChange("seats_changed", what, before.seats, after.seats, plan=code))
    return changes


def stranded(catalog: Catalog, counts: Counts) -> list[Stranded]:
    """The plan/term pairs with live subscriptions (on them, or scheduled to move to them) that
    `catalog` can't serve: the plan is gone, or it has no price for that term any more."""
    found = []
    for (plan, term), count in sorted(counts.items()):
        if count <= 0:
            continue
        known = catalog.plans.get(plan)
        if known is None:
            found.append(Stranded(plan, term, count, plan_removed=True))
        elif term not in {t.value for t in known.prices}:
            found.append(Stranded(plan, term, count, plan_removed=False))
    return found


def subscribers_of(change: CatalogChange, counts: Counts) -> int | None:
    """How many live subscriptions a change concerns (None: it concerns no plan)."""
    if change.plan is None:
        return None
    return sum(count for (plan, term), count in counts.items()
               if plan == change.plan and (change.term is None or term == change.term))


def _listed(codes) -> str:
    return "[" + ", ".join(sorted(codes)) + "]"


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return str(value)


# What each kind of change means for the subscriptions it concerns.
_FOR_SUBSCRIBERS = {
    "plan_removed": "stranded, nothing could renew them",
    "term_removed": "stranded, nothing could renew them",
    "repriced": "each keeps the price it was sold at until moved with `creditflow catalog migrate`",
    "off_sale": "they keep it; nobody new can buy it",
    "credits_changed": "the new allotment from each one's next monthly grant",
    "features_changed": "the new features as soon as the service runs on this file",
}


def report_lines(changes: list[CatalogChange], counts: Counts, currency: str) -> list[str]:
    """One line per change, with how many live subscriptions it concerns and what it means for
    them."""
    lines = []
    for change in changes:
        line = change.sentence(currency)
        count = subscribers_of(change, counts)
        if count is not None and change.kind not in ("plan_added", "term_added"):
            line += f"; {count} subscription{'s' if count != 1 else ''} on it"
            if count and change.kind in _FOR_SUBSCRIBERS:
                line += f": {_FOR_SUBSCRIBERS[change.kind]}"
        lines.append(line)
    return lines
