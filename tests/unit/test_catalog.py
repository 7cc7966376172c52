"""The catalog file: the shipped sample, and every way a catalog can be wrong.

Each error case edits a few lines of BASE (numbered on the right) and expects the error to name
the line and the field, as `catalog.yaml:<line>: <field>: <reason>`.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from creditflow.catalog.loader import (
    CATALOG_ENV_VAR,
    CatalogError,
    check_catalog,
    default_catalog_path,
    load_catalog,
    load_catalog_text,
)
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError, InvalidRequest
from creditflow.kit.money import round_half_up
from creditflow.kit.periods import Term

BASE = """\
currency: usd                                                                  # 1
free:                                                                          # 2
  daily_credits: "100"                                                         # 3
  features: [standard_models]                                                  # 4
plans:                                                                         # 5
  - code: basic                                                                # 6
    name: Basic                                                                # 7
    rank: 1                                                                    # 8
    monthly_credits: "2000"                                                    # 9
    features: [standard_models, pro_models]                                    # 10
    prices: {monthly: 900, yearly: 7560}                                       # 11
  - code: standard                                                             # 12
    name: Standard                                                             # 13
    rank: 2                                                                    # 14
    monthly_credits: "8000"                                                    # 15
    features: [standard_models, pro_models]                                    # 16
    prices:                                                                    # 17
      monthly: 3000                                                            # 18
      quarterly: 7650                                                          # 19
      yearly: 25200                                                            # 20
bundles:                                                                       # 21
  - {code: credits_1000, name: "1,000 credits", credits: "1000", price: 1000}  # 22
  - {code: credits_5000, name: "5,000 credits", credits: "5000", price: 4500}  # 23
features:                                                                      # 24
  standard_models: {}                                                          # 25
  pro_models: {requires_subscription: true}                                    # 26
policies:                                                                      # 27
  change_rules: default                                                        # 28
  proration: time                                                              # 29
  plan_credits_on_immediate_change: reset                                      # 30
  dunning_retry_days: [1, 3, 7]                                                # 31
  refund: {monthly_days: 3, yearly_days: 5, max_credits_spent: "300"}          # 32
  free_credits_for_subscribers: false                                          # 33
"""


def edited(**lines: str) -> str:
    """BASE with whole lines replaced: `edited(L18="      monthly: 30.0")`. An empty string
    blanks the line, so the other lines keep their numbers; text after the last line may span
    several lines."""
    text = BASE.splitlines()
    for name, replacement in lines.items():
        text[int(name[1:]) - 1] = replacement
    return "\n".join(text) + "\n"


def load_error(text: str) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        load_catalog_text(text, source="catalog.yaml")
    return caught.value


# -- the base and the sample load ------------------------------------------------------------


def test_base_catalog_is_valid():
    catalog = load_catalog_text(BASE)
    assert list(catalog.plans) == ["basic", "standard"]
    assert catalog.plan("basic").prices == {Term.monthly: 900, Term.yearly: 7560}
    assert catalog.source == "<string>"


SAMPLE_PLANS = [
    # code,      name,       rank, credits,  monthly, quarterly, yearly
    ("basic",    "Basic",    1,    "2000",   900,     2295,      7560),
    ("standard", "Standard", 2,    "8000",   3000,    7650,      25200),
    ("ultimate", "Ultimate", 3,    "16000",  5000,    12750,     42000),
    ("creator",  "Creator",  4,    "100000", 25000,   63750,     210000),
]  # fmt: skip


@pytest.mark.parametrize("code, name, rank, credits, monthly, quarterly, yearly", SAMPLE_PLANS)
def test_sample_plans(code, name, rank, credits, monthly, quarterly, yearly):
    plan = load_catalog().plan(code)
    assert (plan.name, plan.rank, str(plan.monthly_credits)) == (name, rank, credits)
    assert plan.prices == {Term.monthly: monthly, Term.quarterly: quarterly, Term.yearly: yearly}
    # Quarterly at 0.85 and yearly at 0.70 of the monthly price per month.
    assert quarterly == round_half_up(Fraction(monthly * 3 * 85, 100))
    assert yearly == round_half_up(Fraction(monthly * 12 * 70, 100))


def test_sample_free_plan_bundles_features_and_policies():
    catalog = load_catalog()
    assert catalog.currency == "usd"
    assert catalog.free.daily_credits == Credits.whole(100)
    assert catalog.free.features == {"standard_models"}
    assert [p.code for p in catalog.plans_by_rank()] == ["basic", "standard", "ultimate", "creator"]
    assert [(b.code, str(b.credits), b.price) for b in catalog.bundles.values()] == [
        ("credits_1000", "1000", 1000),
        ("credits_5000", "5000", 4500),
        ("credits_20000", "20000", 16000),
    ]
    pro = {code for code, feature in catalog.features.items() if feature.requires_subscription}
    assert pro == {"pro_models", "private_generations", "video_models"}
    assert catalog.plan("basic").features == {"standard_models", "pro_models"}
    assert "video_models" not in catalog.plan("standard").features
    assert "video_models" in catalog.plan("ultimate").features

    policies = catalog.policies
    assert policies.change_rules == "default" and policies.rules == ()
    assert (policies.proration, policies.plan_credits_on_immediate_change) == ("time", "reset")
    assert policies.dunning_retry_days == (1, 3, 7)
    assert policies.refund.days_for(Term.monthly) == 3
    assert policies.refund.days_for(Term.quarterly) == 3
    assert policies.refund.days_for(Term.yearly) == 5
    assert policies.refund.max_credits_spent == Credits.whole(300)
    assert policies.free_credits_for_subscribers is False
    assert policies.quote_ttl_seconds == 1800
    assert policies.free_reset_timezone is None


def test_default_path_is_the_sample_unless_the_environment_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv(CATALOG_ENV_VAR, raising=False)
    assert default_catalog_path().name == "sample.yaml"
    custom = tmp_path / "mine.yaml"
    custom.write_text(BASE)
    monkeypatch.setenv(CATALOG_ENV_VAR, str(custom))
    assert default_catalog_path() == custom
    assert list(load_catalog().plans) == ["basic", "standard"]


def test_omitted_policies_and_bundles_take_the_defaults():
    lines = BASE.splitlines()
    catalog = load_catalog_text("\n".join(lines[:20] + lines[23:26]))  # no bundles, no policies
    assert catalog.bundles == {}
    assert catalog.policies.dunning_retry_days == (1, 3, 7)
    assert catalog.policies.refund.max_credits_spent == Credits(300_000)


@pytest.mark.parametrize(
    "written, credits",
    [('"8000"', 8_000_000), ("8000", 8_000_000), ('"73.5"', 73_500), ("73.5", 73_500), ('"0.001"', 1)],
)
def test_credits_may_be_strings_or_numbers(written, credits):
    catalog = load_catalog_text(edited(L15=f"    monthly_credits: {written}"))
    assert catalog.plan("standard").monthly_credits == Credits(credits)


def test_lookups_raise_request_errors_naming_the_field():
    catalog = load_catalog_text(BASE)
    cases = [
        (lambda: catalog.plan("gold"), "unknown_plan", "plan"),
        (lambda: catalog.plan("free"), "unknown_plan", "plan"),
        (lambda: catalog.bundle("credits_7"), "unknown_bundle", "bundle"),
        (lambda: catalog.feature("sound"), "unknown_feature", "feature"),
        (lambda: catalog.term("weekly"), "unknown_term", "term"),
        (lambda: catalog.plan("basic").price(Term.quarterly), "unknown_term", "term"),
    ]
    for lookup, code, param in cases:
        with pytest.raises(InvalidRequest) as caught:
            lookup()
        assert (caught.value.code, caught.value.param) == (code, param)
    assert catalog.term("yearly") is Term.yearly
    assert catalog.plan("standard").terms == (Term.monthly, Term.quarterly, Term.yearly)


# -- every way to get it wrong ----------------------------------------------------------------

RULES = "  change_rules:\n"  # line 28; the rule follows on line 29

ERRORS = [
    # id, edits, line, field, reason contains
    ("price float", {"L18": "      monthly: 30.0"}, 18, "plans[1].prices.monthly",
     "price must be an integer count of minor units, got 30.0"),
    ("price string", {"L18": '      monthly: "3000"'}, 18, "plans[1].prices.monthly",
     "price must be an integer count of minor units, got '3000'"),
    ("price bool", {"L18": "      monthly: yes"}, 18, "plans[1].prices.monthly", "got True"),
    ("price negative", {"L18": "      monthly: -1"}, 18, "plans[1].prices.monthly", "must not be negative"),
    ("price float in flow mapping", {"L11": "    prices: {monthly: 9.0}"}, 11, "plans[0].prices.monthly",
     "got 9.0"),
    ("bundle price float", {"L23": '  - {code: credits_5000, name: "5,000", credits: "5000", price: 45.0}'},
     23, "bundles[1].price", "got 45.0"),
    ("unknown term", {"L19": "      quartely: 7650"}, 19, "plans[1].prices.quartely",
     "unknown term 'quartely' (expected one of: monthly, quarterly, yearly; did you mean 'quarterly'?)"),
    ("plan without prices", {"L11": "    prices: {}"}, 11, "plans[0].prices", "at least one price"),
    ("plan prices missing", {"L11": ""}, 6, "plans[0].prices", "missing required field 'prices'"),
    ("unknown feature in a plan", {"L16": "    features: [standard_models, pro_model]"}, 16,
     "plans[1].features[1]", "unknown feature 'pro_model'"),
    ("unknown feature in free", {"L4": "  features: [standard_models, upscaling]"}, 4, "free.features[1]",
     "unknown feature 'upscaling'"),
    ("free with a subscription feature", {"L4": "  features: [pro_models]"}, 4, "free.features[0]",
     "requires a subscription"),
    ("feature listed twice", {"L10": "    features: [pro_models, pro_models]"}, 10, "plans[0].features[1]",
     "listed twice"),
    ("no free section", {"L2": "", "L3": "", "L4": ""}, 1, "free", "missing required field 'free'"),
    ("no daily credits", {"L3": ""}, 2, "free.daily_credits", "missing required field 'daily_credits'"),
    ("duplicate plan code", {"L12": "  - code: basic"}, 12, "plans[1].code",
     "duplicate plan code 'basic' (first at line 6)"),
    ("duplicate bundle code", {"L23": '  - {code: credits_1000, name: "again", credits: "5", price: 1}'}, 23,
     "bundles[1].code", "duplicate bundle code 'credits_1000'"),
    ("same rank", {"L14": "    rank: 1"}, 14, "plans[1].rank", "same rank as plan 'basic' (line 8)"),
    ("rank zero", {"L8": "    rank: 0"}, 8, "plans[0].rank", "at least 1"),
    ("rank string", {"L8": '    rank: "1"'}, 8, "plans[0].rank", "rank must be an integer"),
    ("negative credits", {"L15": '    monthly_credits: "-5"'}, 15, "plans[1].monthly_credits",
     "must not be negative"),
    ("credits with 4 decimals", {"L3": '  daily_credits: "100.0001"'}, 3, "free.daily_credits",
     "more than 3 decimal places"),
    ("credits not a number", {"L9": "    monthly_credits: lots"}, 9, "plans[0].monthly_credits",
     "not a number"),
    ("zero-credit bundle", {"L22": '  - {code: credits_0, name: "none", credits: "0", price: 0}'}, 22,
     "bundles[0].credits", "more than 0"),
    ("missing plan name", {"L13": ""}, 12, "plans[1].name", "missing required field 'name'"),
    ("missing currency", {"L1": ""}, 2, "currency", "missing required field 'currency'"),
    ("typo in a plan key", {"L9": '    monthly_credit: "2000"'}, 9, "plans[0].monthly_credit",
     "unknown key 'monthly_credit'"),
    ("typo in a top-level key", {"L21": "bundle:"}, 21, "bundle", "did you mean 'bundles'?"),
    ("typo in a feature key", {"L26": "  pro_models: {requires_subscripton: true}"}, 26,
     "features.pro_models.requires_subscripton", "unknown key"),
    ("feature flag not a bool", {"L26": '  pro_models: {requires_subscription: "yes"}'}, 26,
     "features.pro_models.requires_subscription", "must be true or false"),
    ("duplicate yaml key", {"L9": "    rank: 3"}, 9, "plans[0].rank", "duplicate key (first at line 8)"),
    ("currency uppercase", {"L1": "currency: USD"}, 1, "currency", "3-letter lowercase"),
    ("currency too long", {"L1": "currency: dollars"}, 1, "currency", "3-letter lowercase"),
    ("plan code free", {"L6": "  - code: free"}, 6, "plans[0].code", "reserved for the Free plan"),
    ("plan code with spaces", {"L6": "  - code: Basic Plan"}, 6, "plans[0].code", "lowercase letters"),
    ("unknown proration", {"L29": "  proration: linear"}, 29, "policies.proration",
     "unknown value 'linear' (expected one of: time, none)"),
    ("unknown credit mode", {"L30": "  plan_credits_on_immediate_change: carry-over"}, 30,
     "policies.plan_credits_on_immediate_change", "did you mean 'carry_over'?"),
    ("dunning not increasing", {"L31": "  dunning_retry_days: [1, 7, 3]"}, 31, "policies.dunning_retry_days[2]",
     "strictly increase, got 3 after 7"),
    ("dunning repeated", {"L31": "  dunning_retry_days: [1, 1]"}, 31, "policies.dunning_retry_days[1]",
     "strictly increase"),
    ("dunning zero", {"L31": "  dunning_retry_days: [0, 3]"}, 31, "policies.dunning_retry_days[0]",
     "at least 1"),
    ("dunning fraction", {"L31": "  dunning_retry_days: [1, 2.5]"}, 31, "policies.dunning_retry_days[1]",
     "must be an integer"),
    ("dunning not a list", {"L31": "  dunning_retry_days: 3"}, 31, "policies.dunning_retry_days",
     "must be a list"),
    ("refund typo", {"L32": "  refund: {monthly_day: 3}"}, 32, "policies.refund.monthly_day", "unknown key"),
    ("refund days negative", {"L32": "  refund: {yearly_days: -5}"}, 32, "policies.refund.yearly_days",
     "at least 0"),
    ("subscriber free credits not a bool", {"L33": "  free_credits_for_subscribers: sometimes"}, 33,
     "policies.free_credits_for_subscribers", "true or false"),
    ("unknown time zone", {"L33": "  free_reset_timezone: Mars/Olympus"}, 33, "policies.free_reset_timezone",
     "unknown time zone"),
    ("quote ttl zero", {"L33": "  quote_ttl_seconds: 0"}, 33, "policies.quote_ttl_seconds", "at least 1"),
    ("change rules word", {"L28": "  change_rules: sometimes"}, 28, "policies.change_rules",
     "must be 'default' or a list of rules"),
    ("rule with unknown plan", {"L28": RULES + "    - {from_plan: basic, to_plan: ultimate, allowed: false}"}, 29,
     "policies.change_rules[0].to_plan", "unknown plan 'ultimate'"),
    ("rule with unknown term", {"L28": RULES + "    - {from_term: weekly, kind: upgrade}"}, 29,
     "policies.change_rules[0].from_term", "unknown term 'weekly'"),
    ("rule with unknown timing", {"L28": RULES + "    - {from_plan: basic, timings: [now]}"}, 29,
     "policies.change_rules[0].timings[0]", "unknown timing 'now'"),
    ("rule with unknown kind", {"L28": RULES + "    - {to_plan: basic, kind: sidegrade}"}, 29,
     "policies.change_rules[0].kind", "unknown kind 'sidegrade'"),
    ("rule with unknown rank", {"L28": RULES + "    - {from_rank: 9, kind: upgrade}"}, 29,
     "policies.change_rules[0].from_rank", "no plan has rank 9"),
    ("rule with a key typo", {"L28": RULES + "    - {to_plans: basic, allowed: false}"}, 29,
     "policies.change_rules[0].to_plans", "did you mean 'to_plan'?"),
    ("rule with empty timings", {"L28": RULES + "    - {to_plan: basic, timings: []}"}, 29,
     "policies.change_rules[0].timings", "cannot be empty"),
    ("forbidding rule with timings", {"L28": RULES + "    - {to_plan: basic, allowed: false, timings: [immediate]}"},
     29, "policies.change_rules[0].timings", "allowed: false"),
    ("second rule is wrong", {"L28": RULES + "    - {to_plan: basic, allowed: false}\n    - {from_term: daily}"}, 30,
     "policies.change_rules[1].from_term", "unknown term 'daily'"),
]  # fmt: skip


@pytest.mark.parametrize(
    "edits, line, field, reason", [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS]
)
def test_invalid_catalog_names_line_and_field(edits, line, field, reason):
    error = load_error(edited(**edits))
    assert (error.source, error.line, error.field) == ("catalog.yaml", line, field)
    assert str(error).startswith(f"catalog.yaml:{line}: {field}: ")
    assert reason in str(error)


def test_the_message_reads_as_in_the_docs():
    error = load_error(edited(L18="      monthly: 30.0"))
    assert str(error) == (
        "catalog.yaml:18: plans[1].prices.monthly: price must be an integer count of minor units, got 30.0"
    )
    assert isinstance(error, CreditflowError)
    assert (error.code, error.param) == ("invalid_catalog", "plans[1].prices.monthly")


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("", 1, "the catalog is empty"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("currency: usd\nplans: [\n  {code: basic\n", 4, "not valid YAML"),
        ("currency: usd\n---\ncurrency: eur\n", 2, "not valid YAML"),
        ("currency: !!python/object:os.system usd\n", 1, "not valid YAML"),
        ("currency: usd\nplans: &loop [*loop]\n", 2, "an alias refers to a value that contains it"),
        ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
         + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcde", "bcdef")),
         1, "more than 100000 values"),  # counted inside the aliased list on line 1
    ],
)
def test_unreadable_documents(text, line, reason):
    error = load_error(text)
    assert error.line == line
    assert str(error).startswith(f"catalog.yaml:{line}: ")
    assert reason in str(error)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(CatalogError) as caught:
        load_catalog(missing)
    assert caught.value.source == str(missing)
    assert caught.value.line is None
    assert str(caught.value).startswith(f"{missing}: cannot read the catalog")


def test_check_catalog_reports_problems_by_path(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(BASE)
    bad.write_text(edited(L29="  proration: linear"))
    assert check_catalog(good) == []
    assert check_catalog(bad) == [
        f"{bad}:29: policies.proration: unknown value 'linear' (expected one of: time, none)"
    ]
