"""Read and validate the catalog YAML.

Every error names the file, the line and the field, e.g.

    catalog.yaml:14: plans[1].prices.monthly: price must be an integer count of minor units, got 30.0

so that an operator can fix the file without reading this code. `yaml.safe_load` throws the
positions away, so we compose PyYAML's node tree (each node keeps its start mark), turn it into
`_Node`s that carry their line and dotted path, and validate those.

Loading stops at the first error; `check_catalog` goes on and reports every error it can
(each feature, plan, bundle, change rule and section on its own). List indexes in field paths count from 0. Validation runs
section by section (currency, features, free, plans, bundles, policies), since plans can only be
checked once the features they name are known.
"""

from __future__ import annotations

import difflib
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from creditflow.catalog import pricing
from creditflow.catalog.models import (
    CHANGE_KINDS,
    FREE_PLAN_CODE,
    PLAN_CREDIT_MODES,
    PRORATIONS,
    SEAT_DOWNGRADE_POLICIES,
    TAX_PRICE_MODES,
    TIMINGS,
    Bundle,
    Catalog,
    ChangeRule,
    Feature,
    FreePlan,
    Plan,
    Policies,
    RefundPolicy,
    Seller,
    TaxRules,
)
from creditflow.kit.countries import country_code
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError, InvalidRequest
from creditflow.kit.periods import Term

CATALOG_ENV_VAR = "CREDITFLOW_CATALOG"
SAMPLE_CATALOG = "sample.yaml"

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CURRENCY = re.compile(r"^[a-z]{3}$")


class CatalogError(CreditflowError, code="invalid_catalog"):
    """The catalog file is unreadable or invalid. `str(error)` is the full, located message."""

    def __init__(self, reason: str, *, source: str, line: int | None = None, field: str | None = None):
        self.reason = reason
        self.source = source
        self.line = line
        self.field = field
        location = source if line is None else f"{source}:{line}"
        message = f"{location}: {field}: {reason}" if field else f"{location}: {reason}"
        super().__init__(message, param=field)


# -- entry points ---------------------------------------------------------------------------


def default_catalog_path() -> Path:
    """`$CREDITFLOW_CATALOG` if set, else the sample catalog shipped in this package."""
    configured = os.environ.get(CATALOG_ENV_VAR)
    if configured:
        return Path(configured)
    return Path(str(resources.files("creditflow.catalog").joinpath(SAMPLE_CATALOG)))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog file; `None` means `default_catalog_path()`."""
    path = default_catalog_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(f"cannot read the catalog: {error}", source=str(path)) from None
    return load_catalog_text(text, source=str(path))


def load_catalog_text(text: str, source: str = "<string>") -> Catalog:
    try:
        return _read_catalog(_compose(text), source)
    except _Invalid as error:
        raise CatalogError(error.reason, source=source, line=error.line, field=error.field) from None


def check_catalog(path: str | Path) -> list[str]:
    """Every problem with a catalog file, as printable located messages in line order; empty
    when it is valid. Unlike loading, a problem doesn't stop the check: the rest of the section,
    and the sections after it, are still checked."""
    found: list[_Invalid] = []
    token = _collected.set(found)
    try:
        load_catalog(path)
    except CatalogError as error:
        if not any((e.line, e.field or None, e.reason) == (error.line, error.field or None, error.reason)
                   for e in found):
            found.append(_Invalid(error.line, error.field or "", error.reason))
        source = error.source
    else:
        source = str(path)
    finally:
        _collected.reset(token)
    found.sort(key=lambda e: (e.line is None, e.line or 0))
    return [str(CatalogError(e.reason, source=source, line=e.line, field=e.field or None)) for e in found]


# -- the node tree --------------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    kind: str  # "scalar" | "mapping" | "sequence"
    value: Any  # a Python scalar, dict[str, _Node] or list[_Node]
    line: int  # where the value starts
    key_line: int  # where its key is written (the item's line for list items)
    path: str


class _Invalid(Exception):
    def __init__(self, line: int | None, field: str, reason: str):
        super().__init__(reason)
        self.line, self.field, self.reason = line, field, reason


def _fail(node: _Node, reason: str, *, at_key: bool = False) -> NoReturn:
    raise _Invalid(node.key_line if at_key else node.line, node.path, reason)


# The errors found so far while `check_catalog` runs; None while loading (the first error stops).
_collected: ContextVar[list[_Invalid] | None] = ContextVar("catalog_errors", default=None)


@contextmanager
def _collecting():
    """Around one part of the catalog (a section, a plan, ...): while checking, an error in it is
    recorded and the rest of that part skipped, so that the parts after it are checked too; while
    loading, the error stops everything as usual."""
    try:
        yield
    except _Invalid as error:
        found = _collected.get()
        if found is None:
            raise
        found.append(error)


def _stop_if_collected() -> None:
    """While checking, after the parts: stop before building a catalog out of what failed."""
    found = _collected.get()
    if found:
        raise found[0]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_MAX_NODES = 100_000  # aliases can expand a small file exponentially ("billion laughs")


def _compose(text: str) -> _Node:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise _Invalid(1, "", "the catalog is empty")
        return _Tree(loader).convert(root, "", root.start_mark.line + 1)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        what = ", ".join(part for part in (error.context, error.problem) if part)
        raise _Invalid(line, "", f"not valid YAML: {what}") from None
    except yaml.YAMLError as error:
        raise _Invalid(None, "", f"not valid YAML: {error}") from None
    finally:
        loader.dispose()


class _Tree:
    """Turns PyYAML nodes into `_Node`s, refusing recursive aliases and runaway expansion."""

    def __init__(self, loader: yaml.SafeLoader):
        self.loader = loader
        self.open: set[int] = set()  # ids of the nodes being converted: an alias to one recurses
        self.count = 0

    def convert(self, node: yaml.Node, path: str, key_line: int) -> _Node:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > _MAX_NODES:
            raise _Invalid(line, path, f"the catalog has more than {_MAX_NODES} values; check its aliases")
        if isinstance(node, yaml.ScalarNode):
            return _Node("scalar", self.loader.construct_object(node), line, key_line, path)
        if id(node) in self.open:
            raise _Invalid(line, path, "an alias refers to a value that contains it")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return _Node("mapping", self._items(node, path), line, key_line, path)
            children = [
                self.convert(child, f"{path}[{index}]", child.start_mark.line + 1)
                for index, child in enumerate(node.value)
            ]
            return _Node("sequence", children, line, key_line, path)
        finally:
            self.open.discard(id(node))

    def _items(self, node: yaml.MappingNode, path: str) -> dict[str, _Node]:
        items: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            key_at = key_node.start_mark.line + 1
            key = self.loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if isinstance(key, bool):  # YAML reads a bare NO (Norway), ON, YES ... as booleans
                raise _Invalid(key_at, path, f"keys must be names, got {key!r}; quote the key, e.g. \"NO\"")
            if not isinstance(key, str):
                raise _Invalid(key_at, path, f"keys must be names, got {key!r}")
            if key in items:
                first = items[key].key_line
                raise _Invalid(key_at, _join(path, key), f"duplicate key (first at line {first})")
            items[key] = self.convert(value_node, _join(path, key), key_at)
        return items


# -- typed readers --------------------------------------------------------------------------


def _shown(node: _Node) -> str:
    return {"mapping": "a mapping", "sequence": "a list"}.get(node.kind) or repr(node.value)


def _one_of(value: object, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"expected one of: {', '.join(allowed)}{hint}"


def _mapping(node: _Node, allowed: Iterable[str] | None, *, null_is_empty: bool = False) -> dict[str, _Node]:
    """The mapping's entries, refusing keys outside `allowed` (typo protection).

    `allowed=None` accepts any key, for mappings keyed by codes rather than field names.
    """
    if null_is_empty and node.kind == "scalar" and node.value is None:
        return {}
    if node.kind != "mapping":
        _fail(node, f"must be a mapping, got {_shown(node)}")
    if allowed is None:
        return node.value
    allowed = tuple(allowed)
    for key, child in node.value.items():
        if key not in allowed:
            _fail(child, f"unknown key {key!r} ({_one_of(key, allowed)})", at_key=True)
    return node.value


def _required(parent: _Node, items: dict[str, _Node], key: str) -> _Node:
    if key not in items:
        raise _Invalid(parent.key_line, _join(parent.path, key), f"missing required field {key!r}")
    return items[key]


def _sequence(node: _Node) -> list[_Node]:
    if node.kind != "sequence":
        _fail(node, f"must be a list, got {_shown(node)}")
    return node.value


def _text(node: _Node) -> str:
    if not isinstance(node.value, str) or not node.value.strip():
        _fail(node, f"must be a non-empty string, got {_shown(node)}")
    return node.value


def _code(node: _Node) -> str:
    if not isinstance(node.value, str) or not _CODE.match(node.value):
        _fail(node, f"must be a code of lowercase letters, digits and '_', got {_shown(node)}")
    return node.value


def _integer(node: _Node, what: str, *, minimum: int) -> int:
    # bool is an int in Python; `yes` in YAML must not become 1.
    if node.kind != "scalar" or isinstance(node.value, bool) or not isinstance(node.value, int):
        _fail(node, f"{what} must be an integer, got {_shown(node)}")
    if node.value < minimum:
        _fail(node, f"{what} must be at least {minimum}, got {node.value}")
    return node.value


def _boolean(node: _Node) -> bool:
    if not isinstance(node.value, bool):
        _fail(node, f"must be true or false, got {_shown(node)}")
    return node.value


def _price(node: _Node) -> int:
    """Money in minor units. A float is refused outright, even 30.0: money is never a float."""
    value = node.value
    if node.kind != "scalar" or isinstance(value, bool) or not isinstance(value, int):
        _fail(node, f"price must be an integer count of minor units, got {_shown(node)}")
    if value < 0:
        _fail(node, f"price must not be negative, got {value}")
    return value


def _credits(node: _Node, *, positive: bool = False) -> Credits:
    """Credits as a decimal string ("73.5", preferred) or a number, at most 3 decimals."""
    if node.kind != "scalar":
        _fail(node, f"credits must be a decimal string such as \"100\", got {_shown(node)}")
    try:
        amount = Credits.parse(node.value, "credits")
    except InvalidRequest as error:
        _fail(node, f"{error.message}, got {node.value!r}")
    if positive and not amount:
        _fail(node, "credits must be more than 0")
    return amount


def _choice(node: _Node, allowed: tuple[str, ...], what: str = "value") -> str:
    if node.value not in allowed or not isinstance(node.value, str):
        _fail(node, f"unknown {what} {node.value!r} ({_one_of(node.value, allowed)})")
    return node.value


def _term(node: _Node) -> Term:
    return Term(_choice(node, tuple(term.value for term in Term), "term"))


# -- sections -------------------------------------------------------------------------------

_TOP_KEYS = ("currency", "free", "plans", "bundles", "features", "policies", "seller", "taxes")
_PLAN_KEYS = ("code", "name", "rank", "monthly_credits", "features", "prices", "seats", "on_sale", "unlimited",
              "limits")
_BUNDLE_KEYS = ("code", "name", "credits", "price", "on_sale")
_POLICY_KEYS = (
    "change_rules",
    "proration",
    "plan_credits_on_immediate_change",
    "dunning_retry_days",
    "refund",
    "free_credits_for_subscribers",
    "quote_ttl_seconds",
    "free_reset_timezone",
    "seats_on_downgrade",
)
_REFUND_KEYS = ("monthly_days", "quarterly_days", "yearly_days", "max_credits_spent")
_RULE_CONDITIONS = ("from_plan", "to_plan", "from_rank", "to_rank", "from_term", "to_term")
_RULE_KEYS = (*_RULE_CONDITIONS, "kind", "timings", "allowed")


def _read_catalog(root: _Node, source: str) -> Catalog:
    if root.kind != "mapping":
        _fail(root, f"the catalog must be a mapping with the sections {', '.join(_TOP_KEYS)}")
    top = _mapping(root, _TOP_KEYS)
    currency = _required(root, top, "currency")
    with _collecting():
        if not isinstance(currency.value, str) or not _CURRENCY.match(currency.value):
            _fail(currency, f"must be a 3-letter lowercase ISO 4217 code such as usd, got {_shown(currency)}")
    features, free, plans, bundles, policies = {}, None, {}, {}, Policies()
    with _collecting():
        features = _read_features(_required(root, top, "features"))
    with _collecting():
        free = _read_free(_required(root, top, "free"), features)
    with _collecting():
        plans = _read_plans(_required(root, top, "plans"), features)
    with _collecting():
        bundles = _read_bundles(top["bundles"]) if "bundles" in top else {}
    with _collecting():
        policies = _read_policies(top["policies"], plans) if "policies" in top else Policies()
    if _collected.get() is not None:  # checking: the sections read while building the catalog, too
        for section, read in (("seller", _read_seller), ("taxes", _read_taxes)):
            with _collecting():
                if section in top:
                    read(top[section])
    _stop_if_collected()
    return Catalog(
        currency=currency.value,
        free=free,
        plans=plans,
        bundles=bundles,
        features=features,
        policies=policies,
        source=source,
        seller=_read_seller(top["seller"]) if "seller" in top else None,
        taxes=_read_taxes(top["taxes"]) if "taxes" in top else TaxRules(),
    )


def _read_features(node: _Node) -> dict[str, Feature]:
    features: dict[str, Feature] = {}
    for code, entry in _mapping(node, None).items():
        features[code] = Feature(code=code)  # declared, even if wrong: a plan naming it is not wrong too
        with _collecting():
            if not _CODE.match(code):
                _fail(entry, f"feature codes are lowercase letters, digits and '_', got {code!r}", at_key=True)
            fields = _mapping(entry, ("requires_subscription", "name", "cost"), null_is_empty=True)
            requires_subscription = "requires_subscription" in fields and _boolean(fields["requires_subscription"])
            name = _text(fields["name"]) if "name" in fields else ""
            cost = pricing.read_cost(fields["cost"], _fail) if "cost" in fields else None
            features[code] = Feature(code=code, requires_subscription=requires_subscription, name=name, cost=cost)
    return features


def _feature_set(node: _Node, features: dict[str, Feature]) -> frozenset[str]:
    codes: list[str] = []
    for item in _sequence(node):
        if not isinstance(item.value, str) or item.value not in features:
            declared = ", ".join(features) or "none"
            _fail(item, f"unknown feature {item.value!r}: declare it under features (declared: {declared})")
        if item.value in codes:
            _fail(item, f"feature {item.value!r} is listed twice")
        codes.append(item.value)
    return frozenset(codes)


def _read_free(node: _Node, features: dict[str, Feature]) -> FreePlan:
    fields = _mapping(node, ("daily_credits", "features"))
    daily_credits = _credits(_required(node, fields, "daily_credits"))
    feature_codes: frozenset[str] = frozenset()
    if "features" in fields:
        feature_codes = _feature_set(fields["features"], features)
        for item in fields["features"].value:
            if features[item.value].requires_subscription:  # free credits can't pay for it
                _fail(item, f"feature {item.value!r} requires a subscription, so the Free plan cannot include it")
    return FreePlan(daily_credits=daily_credits, features=feature_codes)


def _read_plans(node: _Node, features: dict[str, Feature]) -> dict[str, Plan]:
    plans: dict[str, Plan] = {}
    seen_codes: dict[str, int] = {}
    seen_ranks: dict[int, tuple[str, int]] = {}
    items = _sequence(node)
    if not items:
        _fail(node, "the catalog needs at least one plan")
    for item in items:
        with _collecting():
            fields = _mapping(item, _PLAN_KEYS)
            code_node = _required(item, fields, "code")
            code = _code(code_node)
            if code == FREE_PLAN_CODE:
                _fail(code_node,
                      f"{FREE_PLAN_CODE!r} is reserved for the Free plan, which is configured under free")
            if code in seen_codes:
                _fail(code_node, f"duplicate plan code {code!r} (first at line {seen_codes[code]})")
            seen_codes[code] = code_node.line
            rank_node = _required(item, fields, "rank")
            rank = _integer(rank_node, "rank", minimum=1)  # rank 0 is the Free plan's
            if rank in seen_ranks:
                other, other_line = seen_ranks[rank]
                _fail(rank_node, f"same rank as plan {other!r} (line {other_line}); ranks order the tiers")
            seen_ranks[rank] = (code, rank_node.line)
            plans[code] = Plan(
                code=code,
                name=_text(_required(item, fields, "name")),
                rank=rank,
                monthly_credits=_credits(_required(item, fields, "monthly_credits")),
                features=_feature_set(fields["features"], features) if "features" in fields else frozenset(),
                prices=_read_prices(_required(item, fields, "prices")),
                seats=_integer(fields["seats"], "seats", minimum=1) if "seats" in fields else 1,
                on_sale=_boolean(fields["on_sale"]) if "on_sale" in fields else True,
                **_generation_rules(fields, features),
            )
    return plans


def _generation_rules(fields: dict[str, _Node], features: dict[str, Feature]) -> dict:
    """A plan's unlimited windows and limits (read by catalog/pricing.py)."""
    plan_features = _feature_set(fields["features"], features) if "features" in fields else frozenset()
    rules: dict = {}
    if "unlimited" in fields:
        rules["unlimited"] = pricing.read_unlimited(fields["unlimited"], plan_features, features, _fail)
    if "limits" in fields:
        rules["limits"] = pricing.read_limits(fields["limits"], plan_features, features, _fail)
    return rules


def _read_prices(node: _Node) -> dict[Term, int]:
    if node.kind != "mapping":
        _fail(node, f"must be a mapping of term to price, got {_shown(node)}")
    prices: dict[Term, int] = {}
    term_names = tuple(term.value for term in Term)
    for name, price_node in node.value.items():
        if name not in term_names:
            _fail(price_node, f"unknown term {name!r} ({_one_of(name, term_names)})", at_key=True)
        prices[Term(name)] = _price(price_node)
    if not prices:
        _fail(node, "a plan needs at least one price (monthly, quarterly or yearly)")
    return prices


def _read_bundles(node: _Node) -> dict[str, Bundle]:
    bundles: dict[str, Bundle] = {}
    seen_codes: dict[str, int] = {}
    for item in _sequence(node):
        with _collecting():
            fields = _mapping(item, _BUNDLE_KEYS)
            code_node = _required(item, fields, "code")
            code = _code(code_node)
            if code in seen_codes:
                _fail(code_node, f"duplicate bundle code {code!r} (first at line {seen_codes[code]})")
            seen_codes[code] = code_node.line
            bundles[code] = Bundle(
                code=code,
                name=_text(_required(item, fields, "name")),
                credits=_credits(_required(item, fields, "credits"), positive=True),
                price=_price(_required(item, fields, "price")),
                on_sale=_boolean(fields["on_sale"]) if "on_sale" in fields else True,
            )
    return bundles


def _read_policies(node: _Node, plans: dict[str, Plan]) -> Policies:
    fields = _mapping(node, _POLICY_KEYS, null_is_empty=True)
    settings: dict[str, Any] = {}
    if "change_rules" in fields:
        settings["change_rules"] = _read_change_rules(fields["change_rules"], plans)
    if "proration" in fields:
        settings["proration"] = _choice(fields["proration"], PRORATIONS)
    if "plan_credits_on_immediate_change" in fields:
        settings["plan_credits_on_immediate_change"] = _choice(
            fields["plan_credits_on_immediate_change"], PLAN_CREDIT_MODES
        )
    if "dunning_retry_days" in fields:
        settings["dunning_retry_days"] = _read_dunning(fields["dunning_retry_days"])
    if "refund" in fields:
        settings["refund"] = _read_refund(fields["refund"])
    if "free_credits_for_subscribers" in fields:
        settings["free_credits_for_subscribers"] = _boolean(fields["free_credits_for_subscribers"])
    if "quote_ttl_seconds" in fields:
        settings["quote_ttl_seconds"] = _integer(fields["quote_ttl_seconds"], "quote_ttl_seconds", minimum=1)
    if "free_reset_timezone" in fields:
        settings["free_reset_timezone"] = _read_timezone(fields["free_reset_timezone"])
    if "seats_on_downgrade" in fields:
        settings["seats_on_downgrade"] = _choice(fields["seats_on_downgrade"], SEAT_DOWNGRADE_POLICIES, "policy")
    return Policies(**settings)


def _read_dunning(node: _Node) -> tuple[int, ...]:
    """Days after the failed renewal on which to retry. Empty means: end at the first failure."""
    days: list[int] = []
    for item in _sequence(node):
        day = _integer(item, "a retry day", minimum=1)
        if days and day <= days[-1]:
            _fail(item, f"retry days must strictly increase, got {day} after {days[-1]}")
        days.append(day)
    return tuple(days)


def _read_refund(node: _Node) -> RefundPolicy:
    fields = _mapping(node, _REFUND_KEYS, null_is_empty=True)
    settings: dict[str, Any] = {
        key: _integer(fields[key], key, minimum=0) for key in _REFUND_KEYS[:3] if key in fields
    }
    if "max_credits_spent" in fields:
        settings["max_credits_spent"] = _credits(fields["max_credits_spent"])
    return RefundPolicy(**settings)


def _read_timezone(node: _Node) -> str | None:
    if node.value is None:
        return None
    name = _text(node)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        _fail(node, f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)")
    return name


def _read_change_rules(node: _Node, plans: dict[str, Plan]) -> tuple[ChangeRule, ...] | str:
    if node.kind == "scalar" and node.value == "default":
        return "default"
    if node.kind != "sequence":
        _fail(node, f"change_rules must be 'default' or a list of rules, got {_shown(node)}")
    rules = []
    for item in node.value:
        with _collecting():
            rules.append(_read_change_rule(item, plans))
    return tuple(rules)


def _read_change_rule(node: _Node, plans: dict[str, Plan]) -> ChangeRule:
    fields = _mapping(node, _RULE_KEYS)
    ranks = {plan.rank for plan in plans.values()}
    rule: dict[str, Any] = {"line": node.line}
    for key in ("from_plan", "to_plan"):
        if key in fields:
            code = fields[key].value
            if not isinstance(code, str) or code not in plans:
                _fail(fields[key], f"unknown plan {code!r} ({_one_of(code, plans)})")
            rule[key] = code
    for key in ("from_rank", "to_rank"):
        if key in fields:
            rank = _integer(fields[key], key, minimum=1)
            if rank not in ranks:
                _fail(fields[key], f"no plan has rank {rank} (ranks: {', '.join(map(str, sorted(ranks)))})")
            rule[key] = rank
    for key in ("from_term", "to_term"):
        if key in fields:
            rule[key] = _term(fields[key])
    if "kind" in fields:
        rule["kind"] = _choice(fields["kind"], CHANGE_KINDS, "kind")
    if "timings" in fields:
        timings = tuple(_choice(item, TIMINGS, "timing") for item in _sequence(fields["timings"]))
        if not timings:
            _fail(fields["timings"], "a rule's timings cannot be empty; use allowed: false to forbid a change")
        if len(set(timings)) != len(timings):
            _fail(fields["timings"], "a timing is listed twice")
        rule["timings"] = timings
    if "allowed" in fields:
        rule["allowed"] = _boolean(fields["allowed"])
        if not rule["allowed"]:
            for key in ("kind", "timings"):
                if key in fields:
                    _fail(fields[key], f"a rule with allowed: false forbids the change; {key} means nothing")
    return ChangeRule(**rule)


def _country(node: _Node, value: object) -> str:
    try:
        return country_code(value, "country")
    except InvalidRequest:
        _fail(node, f"{value!r} is not an ISO 3166-1 two-letter country code such as DE or US")


def _read_seller(node: _Node) -> Seller:
    fields = _mapping(node, ("name", "address", "tax_id", "country"))
    tax_id = _text(fields["tax_id"]).replace(" ", "").upper() if "tax_id" in fields else None
    if "country" in fields:
        country = _country(fields["country"], fields["country"].value)
    elif tax_id:  # a VAT number starts with its country ("IE6388047V"; Greece writes EL)
        prefix = {"EL": "GR"}.get(tax_id[:2], tax_id[:2])
        country = _country(fields["tax_id"], prefix) if prefix.isalpha() else None
    else:
        country = None
    return Seller(
        name=_text(_required(node, fields, "name")),
        address=_text(fields["address"]) if "address" in fields else None,
        tax_id=tax_id,
        country=country,
    )


def _read_taxes(node: _Node) -> TaxRules:
    fields = _mapping(node, ("prices", "unions", "rates"))
    prices = _choice(fields["prices"], TAX_PRICE_MODES, "prices") if "prices" in fields else "exclusive"
    unions: dict[str, frozenset[str]] = {}
    for name, members in _mapping(fields["unions"], None).items() if "unions" in fields else ():
        unions[name] = frozenset(_country(item, item.value) for item in _sequence(members))
    rates: dict[str, Decimal] = {}
    for place, rate in _mapping(fields["rates"], None).items() if "rates" in fields else ():
        country, _, region = place.partition("-")
        key = _country(rate, country) + (f"-{region.upper()}" if region else "")
        if key in rates:
            _fail(rate, f"{place!r} is listed twice", at_key=True)
        rates[key] = _percent(rate)
    return TaxRules(prices=prices, unions=unions, rates=rates)


def _percent(node: _Node) -> Decimal:
    """A tax rate in percent, as a decimal string ("19", "7.7") or a number; 0 up to 100."""
    percent = pricing.read_decimal(node, _fail, 'a rate must be a percent such as "19"', shown=_shown(node))
    value = node.value
    if not percent.is_finite() or percent < 0 or percent >= 100:
        _fail(node, f"a rate must be a percent from 0 up to 100, got {value!r}")
    if percent.as_tuple().exponent < -4:
        _fail(node, f"a rate has at most 4 decimals, got {value!r}")
    return percent.normalize() if percent != percent.to_integral() else percent.quantize(Decimal(1))
