"""The catalog's team settings: seats per plan, the seat policy on a downgrade, and the
auto top-up feature; each wrong value is refused naming its line and field."""

from __future__ import annotations

import pytest

from creditflow.catalog.loader import load_catalog, load_catalog_text
from tests.unit.test_catalog import BASE, edited, load_error


def test_sample_seats_policy_and_auto_top_up():
    catalog = load_catalog()
    assert {code: plan.seats for code, plan in catalog.plans.items()} == {
        "basic": 1, "standard": 3, "ultimate": 6, "creator": 20}
    assert catalog.policies.seats_on_downgrade == "refuse"
    assert "auto_top_up" in catalog.features
    assert [code for code, plan in catalog.plans.items() if "auto_top_up" in plan.features] == ["creator"]


def test_seats_default_to_one_and_the_policy_to_refuse():
    catalog = load_catalog_text(BASE)
    assert [plan.seats for plan in catalog.plans.values()] == [1, 1]
    assert catalog.policies.seats_on_downgrade == "refuse"


def test_seats_and_policy_are_read():
    catalog = load_catalog_text(edited(L11="    prices: {monthly: 900, yearly: 7560}\n    seats: 4",
                                       L33="  free_credits_for_subscribers: false\n  seats_on_downgrade: suspend_newest"))
    assert catalog.plan("basic").seats == 4
    assert catalog.policies.seats_on_downgrade == "suspend_newest"


@pytest.mark.parametrize("edits, line, field, reason", [
    ({"L11": "    prices: {monthly: 900}\n    seats: 0"}, 12, "plans[0].seats", "seats must be at least 1"),
    ({"L11": "    prices: {monthly: 900}\n    seats: three"}, 12, "plans[0].seats", "seats must be an integer"),
    ({"L11": "    prices: {monthly: 900}\n    seats: 2.5"}, 12, "plans[0].seats", "seats must be an integer"),
    ({"L33": "  seats_on_downgrade: suspend"}, 33, "policies.seats_on_downgrade",
     "expected one of: refuse, suspend_newest"),
])
def test_wrong_team_settings_name_line_and_field(edits, line, field, reason):
    error = load_error(edited(**edits))
    assert (error.line, error.field) == (line, field)
    assert reason in str(error)
