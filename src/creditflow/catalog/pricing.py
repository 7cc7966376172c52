"""What a generation costs: a feature's price in the catalog, and the pure estimate over it.

A feature may carry a `cost`: a `base` in credits and options of three shapes:

- a choice (`resolution: {choices: {"1k": "1", "4k": "3"}, default: "1k"}`): the chosen
  value's multiplier;
- a count (`count: {per_unit: true, min: 1, max: 8, default: 1}`): times the number asked for
  (seconds of video, images in a batch);
- an add-on (`enhancer: {add: "0.5"}`): a flat number of credits when asked for (`true`).

The cost of a job is base × every multiplier × every count + every add-on. Multipliers may have
more decimals than credits do, so the product is rounded once, half up to 0.001 credit (the one
rounding rule), and add-ons (exact thousandths already) are added to it. An estimate is a pure
function of the loaded catalog and the options: the same options cost the same until the
catalog changes.

Plans may also open unlimited windows (`unlimited: {feature: days}`) and limit jobs
(`limits: {feature: {concurrent, fast_per_day, relaxed}}`); the readers of those live here too so
that everything about pricing generations reads in one place. The catalog loader passes its
node tree and its `fail` function in, so errors carry the file, line and field as any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable, NoReturn

from creditflow.kit.credits import MAX_WHOLE, SCALE, Credits
from creditflow.kit.errors import InvalidRequest

THOUSANDTH = Decimal("0.001")
MAX_MULTIPLIER_DECIMALS = 6
MAX_COUNT = 100_000


def round_credits(value: Decimal) -> Credits:
    """The one rounding rule for computed costs: half up to 0.001 credit."""
    return Credits(int(value.quantize(THOUSANDTH, rounding=ROUND_HALF_UP) * SCALE))


# -- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """An option whose value is one of named choices, each a multiplier of the cost."""

    name: str
    choices: dict[str, Decimal]
    default: str


@dataclass(frozen=True, slots=True)
class Count:
    """An option that multiplies the cost by a whole number within [min, max]."""

    name: str
    min: int
    max: int
    default: int


@dataclass(frozen=True, slots=True)
class AddOn:
    """An option that adds a flat number of credits when asked for (`true`)."""

    name: str
    add: Credits


Option = Choice | Count | AddOn


@dataclass(frozen=True, slots=True)
class Cost:
    base: Credits
    options: tuple[Option, ...] = ()

    def option(self, name: str) -> Option | None:
        for option in self.options:
            if option.name == name:
                return option
        return None


@dataclass(frozen=True, slots=True)
class Line:
    what: str
    amount: Credits


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a job costs and why; `lines` add up to `amount`."""

    feature: str
    amount: Credits
    lines: tuple[Line, ...]
    options: dict[str, Any]
    """The options as priced, defaults filled in."""
    unlimited: bool = False

    def in_window(self, label: str) -> "Estimate":
        """The same job inside an unlimited window: free, with a line that says so."""
        if not self.amount:
            return Estimate(self.feature, self.amount, self.lines, self.options, True)
        return Estimate(self.feature, Credits(0), (*self.lines, Line(label, -self.amount)), self.options, True)


@dataclass(frozen=True, slots=True)
class FeatureLimits:
    """A plan's limits on one feature; None means no limit of that kind."""

    concurrent: int | None = None
    fast_per_day: int | None = None
    relaxed: bool = False
    """Past the daily limit, the job still runs, on the slow (relaxed) queue, instead of being refused."""


# -- the estimate -------------------------------------------------------------------------------


def _invalid(name: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_option", param=f"options.{name}")


def estimate(feature: str, cost: Cost, options: dict[str, Any] | None) -> Estimate:
    """The cost of one job of `feature` with `options` (defaults for those left out).

    InvalidRequest naming `options.<name>` for an option the feature doesn't have or a value it
    doesn't take."""
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise InvalidRequest("options must be an object of option names to values", param="options")
    for name in options:
        if cost.option(name) is None:
            known = ", ".join(option.name for option in cost.options) or "none"
            raise _invalid(str(name), f"{feature} has no option {name!r} (its options: {known})")
    product = Decimal(cost.base.milli) / SCALE
    factors: list[str] = [str(cost.base)]
    adds: list[Line] = []
    priced: dict[str, Any] = {}
    for option in cost.options:
        value = options.get(option.name)
        if isinstance(option, Choice):
            value = option.default if value is None else value
            if not isinstance(value, str) or value not in option.choices:
                allowed = ", ".join(option.choices)
                raise _invalid(option.name, f"options.{option.name} must be one of {allowed}, got {value!r}")
            product *= option.choices[value]
            factors.append(f"{_plain(option.choices[value])} ({option.name} {value})")
        elif isinstance(option, Count):
            value = option.default if value is None else value
            if isinstance(value, bool) or not isinstance(value, int):
                raise _invalid(option.name, f"options.{option.name} must be a whole number, got {value!r}")
            if not option.min <= value <= option.max:
                raise _invalid(option.name,
                               f"options.{option.name} must be from {option.min} to {option.max}, got {value}")
            product *= value
            factors.append(f"{value} ({option.name})")
        else:
            value = False if value is None else value
            if not isinstance(value, bool):
                raise _invalid(option.name, f"options.{option.name} must be true or false, got {value!r}")
            if value:
                adds.append(Line(option.name, option.add))
        priced[option.name] = value
    main = round_credits(product)
    lines = (Line(f"{feature}: " + " × ".join(factors), main), *adds)
    total = Credits(sum(line.amount.milli for line in lines))
    return Estimate(feature, total, lines, priced)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def most_expensive(cost: Cost) -> Credits:
    """The dearest job the options allow (every multiplier and count at its largest, every
    add-on asked for)."""
    product = Decimal(cost.base.milli) / SCALE
    added = 0
    for option in cost.options:
        if isinstance(option, Choice):
            product *= max(option.choices.values())
        elif isinstance(option, Count):
            product *= option.max
        else:
            added += option.add.milli
    return Credits(round_credits(product).milli + added)


# -- reading the catalog file ---------------------------------------------------------------------
# `node` is the loader's node (kind, value, line, key_line, path); `fail(node, reason, at_key=False)`
# raises its located error.

Fail = Callable[..., NoReturn]
_COST_KEYS = ("base", "options")


def read_cost(node, fail: Fail) -> Cost:
    fields = _mapping(node, _COST_KEYS, fail)
    if "base" not in fields:
        fail(node, "missing required field 'base' (credits per unit)", at_key=True)
    base = _credits(fields["base"], fail)
    options: list[Option] = []
    for name, entry in (_mapping(fields["options"], None, fail) if "options" in fields else {}).items():
        options.append(_read_option(name, entry, fail))
    cost = Cost(base, tuple(options))
    if most_expensive(cost).milli > MAX_WHOLE * SCALE:
        fail(node, f"the dearest job these options allow costs more than {MAX_WHOLE} credits")
    return cost


def _read_option(name: str, node, fail: Fail) -> Option:
    fields = _mapping(node, ("choices", "default", "per_unit", "min", "max", "add"), fail)
    shapes = [key for key in ("choices", "per_unit", "add") if key in fields]
    if len(shapes) != 1:
        fail(node, f"option {name!r} needs exactly one of choices (multipliers), per_unit: true (a count) "
                   f"or add (flat credits)", at_key=True)
    shape = shapes[0]
    if shape == "choices":
        _only(fields, ("choices", "default"), name, fail)
        choices: dict[str, Decimal] = {}
        entries = _mapping(fields["choices"], None, fail)
        if not entries:
            fail(fields["choices"], f"option {name!r} has no choices")
        for choice, multiplier in entries.items():
            choices[choice] = _multiplier(multiplier, fail)
        if "default" not in fields:
            fail(node, f"option {name!r} needs a default (one of: {', '.join(choices)})", at_key=True)
        default = fields["default"]
        if not isinstance(default.value, str) or default.value not in choices:
            fail(default, f"default {default.value!r} is not one of the choices defined ({', '.join(choices)})")
        return Choice(name, choices, default.value)
    if shape == "per_unit":
        _only(fields, ("per_unit", "min", "max", "default"), name, fail)
        if fields["per_unit"].value is not True:
            fail(fields["per_unit"], "per_unit must be true (the option is a count)")
        low = _count(fields["min"], "min", fail) if "min" in fields else 1
        high = _count(fields["max"], "max", fail) if "max" in fields else None
        if high is None:
            fail(node, f"option {name!r} needs a max", at_key=True)
        if low > high:
            fail(fields["min"], f"min {low} is more than max {high}")
        default = _count(fields["default"], "default", fail) if "default" in fields else low
        if not low <= default <= high:
            fail(fields["default"], f"default {default} is outside min {low} to max {high}")
        return Count(name, low, high, default)
    _only(fields, ("add",), name, fail)
    return AddOn(name, _credits(fields["add"], fail))


def read_unlimited(node, plan_features: frozenset[str], features: dict, fail: Fail) -> dict[str, int]:
    """`unlimited: {feature: days}`: days free from the start of each billing period."""
    windows: dict[str, int] = {}
    for code, days in _mapping(node, None, fail).items():
        _plan_feature(code, days, plan_features, features, fail)
        windows[code] = _count(days, "days", fail, minimum=1, maximum=366)
    return windows


def read_limits(node, plan_features: frozenset[str], features: dict, fail: Fail) -> dict[str, FeatureLimits]:
    """`limits: {feature: {concurrent, fast_per_day, relaxed}}`."""
    limits: dict[str, FeatureLimits] = {}
    for code, entry in _mapping(node, None, fail).items():
        _plan_feature(code, entry, plan_features, features, fail)
        fields = _mapping(entry, ("concurrent", "fast_per_day", "relaxed"), fail)
        concurrent = _count(fields["concurrent"], "concurrent", fail, minimum=1) if "concurrent" in fields else None
        fast = _count(fields["fast_per_day"], "fast_per_day", fail, minimum=0) if "fast_per_day" in fields else None
        relaxed = False
        if "relaxed" in fields:
            if not isinstance(fields["relaxed"].value, bool):
                fail(fields["relaxed"], f"must be true or false, got {fields['relaxed'].value!r}")
            relaxed = fields["relaxed"].value
            if relaxed and fast is None:
                fail(fields["relaxed"], "relaxed means a relaxed queue past fast_per_day; set fast_per_day")
        limits[code] = FeatureLimits(concurrent, fast, relaxed)
    return limits


def _plan_feature(code: str, node, plan_features: frozenset[str], features: dict, fail: Fail) -> None:
    if code not in features:
        fail(node, f"unknown feature {code!r}: declare it under features", at_key=True)
    if code not in plan_features:
        fail(node, f"feature {code!r} is not in this plan's features", at_key=True)


def _mapping(node, allowed: tuple[str, ...] | None, fail: Fail) -> dict:
    if node.kind != "mapping":
        fail(node, f"must be a mapping, got {node.value!r}" if node.kind == "scalar" else "must be a mapping")
    if allowed is not None:
        for key, child in node.value.items():
            if key not in allowed:
                fail(child, f"unknown key {key!r} (expected one of: {', '.join(allowed)})", at_key=True)
    return node.value


def _only(fields: dict, allowed: tuple[str, ...], name: str, fail: Fail) -> None:
    for key, child in fields.items():
        if key not in allowed:
            fail(child, f"option {name!r} does not take {key!r} (it takes: {', '.join(allowed)})", at_key=True)


def _credits(node, fail: Fail) -> Credits:
    if node.kind != "scalar":
        fail(node, "credits must be a decimal string such as \"10\"")
    try:
        return Credits.parse(node.value, "credits")
    except InvalidRequest as error:
        fail(node, f"{error.message}, got {node.value!r}")


def read_decimal(node, fail: Fail, expected: str, *, shown: str | None = None) -> Decimal:
    """A decimal string ("1.5") or a number, as written; else `fail(node, "<expected>, got <it>")`
    (`shown` says what it is, its repr by default). Infinity and NaN are left to the caller."""
    value = node.value
    if node.kind != "scalar" or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        fail(node, f"{expected}, got {shown or repr(value)}")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        fail(node, f"{expected}, got {value!r}")


def _multiplier(node, fail: Fail) -> Decimal:
    number = read_decimal(node, fail, 'a multiplier must be a decimal string such as "1.5"')
    value = node.value
    if not number.is_finite():
        fail(node, f"a multiplier must be finite, got {value!r}")
    if number < 0:
        fail(node, f"a multiplier must not be negative, got {value!r}")
    if number > 10_000:
        fail(node, f"a multiplier must be at most 10000, got {value!r}")
    if number.as_tuple().exponent < -MAX_MULTIPLIER_DECIMALS:
        fail(node, f"a multiplier has at most {MAX_MULTIPLIER_DECIMALS} decimals, got {value!r}")
    return number


def _count(node, what: str, fail: Fail, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    value = node.value
    if node.kind != "scalar" or isinstance(value, bool) or not isinstance(value, int):
        fail(node, f"{what} must be a whole number, got {value!r}")
    if not minimum <= value <= maximum:
        fail(node, f"{what} must be from {minimum} to {maximum}, got {value}")
    return value
