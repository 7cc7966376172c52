"""Plan-change classification (upgrade or downgrade, and when): the default rule and catalog rule tables."""

from __future__ import annotations

import itertools
from importlib import resources

import pytest

from creditflow.catalog.loader import load_catalog_text
from creditflow.catalog.models import TIMINGS
from creditflow.catalog.rules import DEFAULT_TIMINGS, ChangeDecision, classify_change
from creditflow.kit.errors import Conflict, Forbidden, InvalidRequest
from creditflow.kit.periods import Term


def sample_text() -> str:
    """The shipped sample, whatever CREDITFLOW_CATALOG says."""
    return resources.files("creditflow.catalog").joinpath("sample.yaml").read_text()


def catalog_with(replace: str, by: str):
    text = sample_text()
    assert replace in text
    return load_catalog_text(text.replace(replace, by))


SAMPLE = load_catalog_text(sample_text())

UP = ("upgrade", ("immediate", "end_of_period"))
DOWN = ("downgrade", ("end_of_period", "immediate_support"))

DEFAULT_CASES = [
    # from plan, term,      to plan,    term,        kind and timings
    ("basic",    "monthly", "standard", "monthly",   UP),    # higher rank
    ("standard", "monthly", "standard", "quarterly", UP),    # same plan, longer term
    ("standard", "monthly", "standard", "yearly",    UP),
    ("standard", "quarterly", "standard", "yearly",  UP),
    ("basic",    "yearly",  "standard", "monthly",   UP),    # rank beats term
    ("standard", "yearly",  "standard", "monthly",   DOWN),  # same plan, shorter term
    ("standard", "yearly",  "standard", "quarterly", DOWN),
    ("ultimate", "monthly", "standard", "monthly",   DOWN),  # lower rank
    ("ultimate", "monthly", "standard", "yearly",    DOWN),  # lower rank, even on a longer term
    ("creator",  "yearly",  "basic",    "monthly",   DOWN),
]  # fmt: skip


@pytest.mark.parametrize("from_plan, from_term, to_plan, to_term, expected", DEFAULT_CASES)
def test_default_classification(from_plan, from_term, to_plan, to_term, expected):
    decision = classify_change(SAMPLE, from_plan, Term(from_term), to_plan, Term(to_term))
    assert (decision.kind, decision.timings) == expected
    assert decision.rule is None


def test_default_rule_orders_every_pair_one_way():
    """Of A->B and B->A, exactly one is an upgrade, for every pair of distinct (plan, term)."""
    offers = [(plan, term) for plan in SAMPLE.plans for term in Term]
    for (a_plan, a_term), (b_plan, b_term) in itertools.combinations(offers, 2):
        there = classify_change(SAMPLE, a_plan, a_term, b_plan, b_term).kind
        back = classify_change(SAMPLE, b_plan, b_term, a_plan, a_term).kind
        assert {there, back} == {"upgrade", "downgrade"}, (a_plan, a_term, b_plan, b_term)


def test_same_plan_and_term_is_refused():
    with pytest.raises(Conflict) as caught:
        classify_change(SAMPLE, "standard", Term.monthly, "standard", Term.monthly)
    assert caught.value.code == "same_plan"


@pytest.mark.parametrize(
    "from_plan, to_plan, to_term, code, param",
    [
        ("gold", "basic", "monthly", "unknown_plan", "plan"),
        ("basic", "gold", "monthly", "unknown_plan", "plan"),
        ("basic", "standard", "weekly", "unknown_term", "term"),
    ],
)
def test_unknown_plans_and_terms(from_plan, to_plan, to_term, code, param):
    with pytest.raises(InvalidRequest) as caught:
        classify_change(SAMPLE, from_plan, "monthly", to_plan, to_term)
    assert (caught.value.code, caught.value.param) == (code, param)


def test_a_term_the_target_plan_is_not_sold_on_is_refused():
    catalog = catalog_with(
        "prices: {monthly: 900, quarterly: 2295, yearly: 7560}", "prices: {monthly: 900, yearly: 7560}"
    )
    with pytest.raises(InvalidRequest) as caught:
        classify_change(catalog, "standard", Term.monthly, "basic", Term.quarterly)
    assert (caught.value.code, caught.value.param) == ("unknown_term", "term")


# -- a rule table -----------------------------------------------------------------------------

RULES = catalog_with(
    "change_rules: default",
    """change_rules:
    - {from_plan: creator, to_plan: basic, allowed: false}                              # 0
    - {from_term: yearly, to_term: monthly, kind: downgrade, timings: [end_of_period]}  # 1
    - {from_rank: 1, to_rank: 3, kind: upgrade, timings: [immediate]}                   # 2
    - {to_plan: creator, timings: [end_of_period]}                                      # 3
    - {from_plan: basic, to_plan: ultimate, timings: [end_of_period]}                   # 4: shadowed by 2""",
)

RULE_CASES = [
    # from plan, term,     to plan,    term,      kind,        timings,                          rule
    ("ultimate", "yearly",  "ultimate", "monthly", "downgrade", ("end_of_period",),               1),
    ("standard", "yearly",  "basic",    "monthly", "downgrade", ("end_of_period",),               1),
    ("basic",    "yearly",  "ultimate", "monthly", "downgrade", ("end_of_period",),               1),  # kind set by rule
    ("basic",    "monthly", "ultimate", "monthly", "upgrade",   ("immediate",),                   2),  # 2 before 4
    ("standard", "monthly", "creator",  "monthly", "upgrade",   ("end_of_period",),               3),  # default kind
    ("basic",    "monthly", "standard", "monthly", "upgrade",   ("immediate", "end_of_period"),   None),
    ("ultimate", "monthly", "basic",    "monthly", "downgrade", ("end_of_period", "immediate_support"), None),
]  # fmt: skip


@pytest.mark.parametrize("from_plan, from_term, to_plan, to_term, kind, timings, rule", RULE_CASES)
def test_first_matching_rule_decides_else_the_default(from_plan, from_term, to_plan, to_term, kind, timings, rule):
    decision = classify_change(RULES, from_plan, from_term, to_plan, to_term)
    assert decision == ChangeDecision(kind, timings, rule=rule)


@pytest.mark.parametrize("from_term", ["monthly", "yearly"])  # yearly would also match rule 1
def test_a_forbidding_rule_refuses_the_change(from_term):
    with pytest.raises(Conflict) as caught:
        classify_change(RULES, "creator", from_term, "basic", "monthly")
    assert caught.value.code == "change_not_allowed"


def test_rules_keep_their_line_for_messages():
    table_line = next(n for n, text in enumerate(sample_text().splitlines(), 1) if "change_rules: default" in text)
    assert [rule.line for rule in RULES.policies.rules] == [table_line + k for k in range(1, 6)]


# -- timings ----------------------------------------------------------------------------------


def test_default_timings_use_the_catalog_vocabulary():
    assert all(timing in TIMINGS for timings in DEFAULT_TIMINGS.values() for timing in timings)


@pytest.mark.parametrize(
    "decision, timing, support, outcome",
    [
        (ChangeDecision(*UP), "immediate", False, "immediate"),
        (ChangeDecision(*UP), "end_of_period", False, "end_of_period"),
        (ChangeDecision(*DOWN), "end_of_period", False, "end_of_period"),
        (ChangeDecision(*DOWN), "immediate", False, "support_only"),  # an immediate downgrade is for support
        (ChangeDecision(*DOWN), "immediate", True, "immediate"),
        (ChangeDecision("upgrade", ("immediate",)), "end_of_period", False, "timing_not_allowed"),
        (ChangeDecision("upgrade", ("immediate",)), "end_of_period", True, "timing_not_allowed"),
        (ChangeDecision(*UP), "later", False, "invalid_request"),
        (ChangeDecision(*DOWN), "immediate_support", True, "invalid_request"),  # not a request value
    ],
)
def test_check_timing(decision, timing, support, outcome):
    if outcome in ("immediate", "end_of_period"):
        assert decision.check_timing(timing, support=support) == outcome
        return
    with pytest.raises((Forbidden, Conflict, InvalidRequest)) as caught:
        decision.check_timing(timing, support=support)
    assert (caught.value.code, caught.value.param) == (outcome, "timing")


def test_default_timing_is_the_first_self_service_one():
    assert ChangeDecision(*UP).default_timing == "immediate"
    assert ChangeDecision(*DOWN).default_timing == "end_of_period"
    assert ChangeDecision("downgrade", ("immediate_support",)).default_timing is None
