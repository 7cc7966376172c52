"""Priced features in the catalog: reading them (errors name file, line and field) and the pure
estimate (lines add up, one rounding rule)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.catalog.loader import CatalogError, load_catalog, load_catalog_text
from creditflow.catalog.pricing import AddOn, Choice, Cost, Count, FeatureLimits, estimate, round_credits
from creditflow.kit.credits import Credits
from creditflow.kit.errors import InvalidRequest

BASE = """\
currency: usd
free:
  daily_credits: "100"
  features: [image]
plans:
  - code: pro
    name: Pro
    rank: 1
    monthly_credits: "1000"
    features: [image, video]
    prices: {monthly: 1000}
    unlimited: {image: 7}
    limits: {video: {concurrent: 1, fast_per_day: 20, relaxed: true}}
features:
  image:
    cost:
      base: "10"
      options:
        resolution: {choices: {"1k": "1", "2k": "1.5", "4k": "3"}, default: "1k"}
        count: {per_unit: true, min: 1, max: 8, default: 1}
        enhancer: {add: "0.5"}
  video:
    cost:
      base: "4"
      options:
        seconds: {per_unit: true, min: 5, max: 60, default: 5}
"""


def _load(text: str = BASE):
    return load_catalog_text(text, source="catalog.yaml")


def test_a_priced_feature_and_a_plan_s_windows_and_limits_are_read():
    catalog = _load()
    cost = catalog.feature("image").cost
    assert cost.base == Credits.whole(10)
    assert cost.options == (
        Choice("resolution", {"1k": Decimal("1"), "2k": Decimal("1.5"), "4k": Decimal("3")}, "1k"),
        Count("count", 1, 8, 1),
        AddOn("enhancer", Credits(500)),
    )
    plan = catalog.plan("pro")
    assert plan.unlimited == {"image": 7}
    assert plan.limits == {"video": FeatureLimits(concurrent=1, fast_per_day=20, relaxed=True)}


def test_the_sample_catalog_prices_an_image_and_a_video_model():
    catalog = load_catalog()
    image, video = catalog.feature("image_fast"), catalog.feature("video")
    assert str(estimate("image_fast", image.cost, {"resolution": "4k", "count": 2, "enhancer": True}).amount) == "60.5"
    assert str(estimate("video", video.cost, {"seconds": 10, "resolution": "1080p"}).amount) == "60"
    assert catalog.plan("creator").unlimited == {"image_fast": 7, "video": 3}
    assert catalog.plan("ultimate").limits["video"] == FeatureLimits(1, 20, True)


@pytest.mark.parametrize("old, new, line, field, reason", [
    ('"2k": "1.5"', '"2k": "-1.5"', 19, "features.image.cost.options.resolution.choices.2k",
     "must not be negative"),
    ('default: "1k"', 'default: "8k"', 19, "features.image.cost.options.resolution.default",
     "not one of the choices defined"),
    ("min: 1, max: 8, default: 1", "min: 9, max: 8, default: 9", 20, "features.image.cost.options.count.min",
     "min 9 is more than max 8"),
    ("min: 1, max: 8, default: 1", "min: 1, max: 8, default: 9", 20, "features.image.cost.options.count.default",
     "outside min 1 to max 8"),
    ('enhancer: {add: "0.5"}', 'enhancer: {add: "0.5", default: true}', 21,
     "features.image.cost.options.enhancer.default", "does not take 'default'"),
    ('enhancer: {add: "0.5"}', 'enhancer: {add: "0.0005"}', 21, "features.image.cost.options.enhancer.add",
     "more than 3 decimal places"),
    ('enhancer: {add: "0.5"}', 'enhancer: {}', 21, "features.image.cost.options.enhancer", "exactly one of"),
    ('base: "10"', 'bass: "10"', 17, "features.image.cost.bass", "unknown key 'bass'"),
    ("unlimited: {image: 7}", "unlimited: {imag: 7}", 12, "plans[0].unlimited.imag", "unknown feature 'imag'"),
    ("unlimited: {image: 7}", "unlimited: {image: 0}", 12, "plans[0].unlimited.image", "from 1 to 366"),
    ("concurrent: 1,", "concurrent: -1,", 13, "plans[0].limits.video.concurrent", "from 1 to"),
    ("relaxed: true", "relaxed: yes please", 13, "plans[0].limits.video.relaxed", "true or false"),
])
def test_a_wrong_cost_window_or_limit_names_file_line_and_field(old, new, line, field, reason):
    assert BASE.count(old) == 1
    with pytest.raises(CatalogError) as caught:
        _load(BASE.replace(old, new))
    error = caught.value
    assert (error.line, error.field) == (line, field), str(error)
    assert reason in error.reason
    assert str(error).startswith(f"catalog.yaml:{line}: {field}: ")


def test_a_window_on_a_feature_outside_the_plan_is_refused():
    text = BASE.replace("features: [image, video]", "features: [video]").replace(
        "limits: {video: {concurrent: 1, fast_per_day: 20, relaxed: true}}", "")
    with pytest.raises(CatalogError, match=r"catalog.yaml:12: plans\[0\].unlimited.image: .*not in this plan"):
        _load(text)


COST = _load().feature("image").cost


def test_an_estimate_names_its_lines_and_fills_in_the_defaults():
    result = estimate("image", COST, {"resolution": "2k", "count": 3, "enhancer": True})
    assert str(result.amount) == "45.5"
    assert [(line.what, str(line.amount)) for line in result.lines] == [
        ("image: 10 × 1.5 (resolution 2k) × 3 (count)", "45"), ("enhancer", "0.5")]
    assert estimate("image", COST, {}).options == {"resolution": "1k", "count": 1, "enhancer": False}
    assert str(estimate("image", COST, None).amount) == "10"


@pytest.mark.parametrize("options, param", [
    ({"quality": "high"}, "options.quality"),
    ({"resolution": "8k"}, "options.resolution"),
    ({"resolution": 2}, "options.resolution"),
    ({"count": 9}, "options.count"),
    ({"count": 0}, "options.count"),
    ({"count": "2"}, "options.count"),
    ({"count": True}, "options.count"),
    ({"enhancer": "yes"}, "options.enhancer"),
])
def test_an_unknown_option_or_a_bad_value_names_the_option(options, param):
    with pytest.raises(InvalidRequest) as caught:
        estimate("image", COST, options)
    assert caught.value.param == param


def test_costs_needing_more_than_three_decimals_round_half_up_once():
    cost = Cost(Credits(1), (Choice("q", {"a": Decimal("0.5"), "b": Decimal("1.5")}, "a"),))  # 0.001 credit
    assert estimate("f", cost, {"q": "a"}).amount == Credits(1)  # 0.0005 -> 0.001
    assert estimate("f", cost, {"q": "b"}).amount == Credits(2)  # 0.0015 -> 0.002
    assert round_credits(Decimal("73.4995")) == Credits(73500)
    assert round_credits(Decimal("73.4994999")) == Credits(73499)


multipliers = st.decimals(min_value=0, max_value=20, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def priced_jobs(draw):
    base = Credits(draw(st.integers(0, 100_000)))
    options, asked = [], {}
    for index in range(draw(st.integers(0, 4))):
        shape = draw(st.sampled_from(["choice", "count", "add"]))
        name = f"o{index}"
        if shape == "choice":
            choices = {f"c{i}": draw(multipliers) for i in range(draw(st.integers(1, 3)))}
            options.append(Choice(name, choices, next(iter(choices))))
            if draw(st.booleans()):
                asked[name] = draw(st.sampled_from(sorted(choices)))
        elif shape == "count":
            low = draw(st.integers(0, 10))
            high = draw(st.integers(low, 60))
            options.append(Count(name, low, high, low))
            if draw(st.booleans()):
                asked[name] = draw(st.integers(low, high))
        else:
            options.append(AddOn(name, Credits(draw(st.integers(0, 10_000)))))
            if draw(st.booleans()):
                asked[name] = draw(st.booleans())
    return Cost(base, tuple(options)), asked


@given(priced_jobs())
def test_an_estimate_is_the_sum_of_its_lines_and_the_rule_applied_once(job):
    cost, asked = job
    result = estimate("f", cost, asked)
    assert sum(line.amount.milli for line in result.lines) == result.amount.milli
    # base x every multiplier x every count + every add-on, rounded half up to 0.001
    exact = Decimal(cost.base.milli) / 1000
    added = Decimal(0)
    for option in cost.options:
        value = result.options[option.name]
        if isinstance(option, Choice):
            exact *= option.choices[value]
        elif isinstance(option, Count):
            exact *= value
        elif value:
            added += Decimal(option.add.milli) / 1000
    expected = (exact + added).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    assert Decimal(result.amount.milli) / 1000 == expected
    # inside an unlimited window: free, and the lines still add up
    free = result.in_window("unlimited window")
    assert free.amount == Credits(0) and free.unlimited
    assert sum(line.amount.milli for line in free.lines) == 0
