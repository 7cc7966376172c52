"""Pure parts of changing the catalog in production: `on_sale` in the file, the comparison of
two files and whom a file strands, and a subscription's price as sold (which renewal a moved
price starts at, month ends included)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from creditflow.catalog.diff import diff_catalogs, stranded
from creditflow.catalog.loader import CatalogError, default_catalog_path, load_catalog_text
from creditflow.kit.errors import Conflict
from creditflow.kit.periods import Term, add_months
from creditflow.subscription.models import Subscription
from creditflow.subscription.price import (
    charge_term_from,
    first_renewal_from,
    next_renewal_price,
    price_of_term_from,
    sold_price,
)

SAMPLE = Path(default_catalog_path()).read_text(encoding="utf-8")
CATALOG = load_catalog_text(SAMPLE)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def edited(*pairs: tuple[str, str]) -> str:
    text = SAMPLE
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# --- on_sale in the file -----------------------------------------------------------------------


def test_plans_and_bundles_are_on_sale_unless_the_file_says_otherwise():
    assert all(plan.on_sale for plan in CATALOG.plans.values())
    assert all(bundle.on_sale for bundle in CATALOG.bundles.values())
    catalog = load_catalog_text(edited(("    name: Basic\n", "    name: Basic\n    on_sale: false\n"),
                                       ('price: 1000}', 'price: 1000, on_sale: false}')))
    assert catalog.plans["basic"].on_sale is False and catalog.plans["standard"].on_sale is True
    assert catalog.bundles["credits_1000"].on_sale is False
    assert catalog.plan("basic").code == "basic"  # still known: its subscribers renew
    with pytest.raises(Conflict) as refused:
        catalog.plan_for_sale("basic")
    assert (refused.value.code, refused.value.param) == ("plan_not_on_sale", "plan")
    with pytest.raises(Conflict) as refused:
        catalog.bundle_for_sale("credits_1000")
    assert (refused.value.code, refused.value.param) == ("bundle_not_on_sale", "bundle")
    assert catalog.plan_for_sale("standard").code == "standard"


def test_on_sale_must_be_true_or_false_and_the_error_says_where():
    with pytest.raises(CatalogError) as error:
        load_catalog_text(edited(("    name: Basic\n", "    name: Basic\n    on_sale: no thanks\n")), source="c.yaml")
    assert str(error.value).startswith("c.yaml:") and "plans[0].on_sale: must be true or false" in str(error.value)


# --- comparing two files -----------------------------------------------------------------------


@pytest.mark.parametrize("edit, expected", [
    (("prices: {monthly: 3000,", "prices: {monthly: 3500,"),
     [("repriced", "plan standard monthly", 3000, 3500, "standard", "monthly")]),
    (("    name: Basic\n", "    name: Basic\n    on_sale: false\n"),
     [("off_sale", "plan basic", None, None, "basic", None)]),
    (('monthly_credits: "2000"', 'monthly_credits: "2500"'),
     [("credits_changed", "plan basic monthly_credits", "2000", "2500", "basic", None)]),
    ((", yearly: 7560}", "}"), [("term_removed", "plan basic yearly", 7560, None, "basic", "yearly")]),
    (('credits: "5000", price: 4500', 'credits: "5000", price: 4000'),
     [("bundle_repriced", "bundle credits_5000", 4500, 4000, None, None)]),
    (("dunning_retry_days: [1, 3, 7]", "dunning_retry_days: [2, 4]"),
     [("policy_changed", "policies.dunning_retry_days", "[1, 3, 7]", "[2, 4]", None, None)]),
])
def test_each_kind_of_change_is_found(edit, expected):
    changes = diff_catalogs(CATALOG, load_catalog_text(edited(edit)))
    assert [(c.kind, c.what, c.old, c.new, c.plan, c.term) for c in changes] == expected


def test_the_same_file_changes_nothing_and_a_removed_plan_is_one_change():
    assert diff_catalogs(CATALOG, load_catalog_text(SAMPLE)) == []
    basic = SAMPLE[SAMPLE.index("  - code: basic"):SAMPLE.index("  - code: standard")]
    changes = diff_catalogs(CATALOG, load_catalog_text(edited((basic, ""))))
    assert [(c.kind, c.plan) for c in changes] == [("plan_removed", "basic")]
    back = diff_catalogs(load_catalog_text(edited((basic, ""))), CATALOG)
    assert [(c.kind, c.plan) for c in back] == [("plan_added", "basic")]


def test_a_file_strands_whoever_is_on_a_plan_or_term_it_no_longer_has():
    basic = SAMPLE[SAMPLE.index("  - code: basic"):SAMPLE.index("  - code: standard")]
    without_basic = load_catalog_text(edited((basic, ""), (", yearly: 25200}", "}")))
    counts = Counter({("basic", "monthly"): 3, ("standard", "yearly"): 1, ("standard", "monthly"): 5,
                      ("ultimate", "yearly"): 0})
    found = stranded(without_basic, counts)
    assert [(s.plan, s.term, s.subscriptions, s.plan_removed) for s in found] == [
        ("basic", "monthly", 3, True), ("standard", "yearly", 1, False)]
    assert found[1].sentence() == ("plan 'standard' is no longer sold on a yearly term, but 1 live subscription "
                                   "is on standard (yearly)")
    assert stranded(CATALOG, counts) == []


# --- a subscription's price as sold ---------------------------------------------------------------


def subscription(anchor: datetime, term: str = "monthly", *, term_end_offset: int = 1, **fields) -> Subscription:
    unset = dict(pending_invoice_id=None, price=None, next_price=None, next_price_from=None, scheduled_plan=None,
                 scheduled_term=None, scheduled_price=None)
    sub = Subscription(plan="standard", term=term, anchor=anchor, term_end_offset=term_end_offset,
                       **{**unset, **fields})
    sub.current_term_end = add_months(anchor, term_end_offset)
    return sub


@pytest.mark.parametrize("anchor, term, end_offset, earliest, pending, expected", [
    # A renewal exactly at the earliest instant counts; one a second before doesn't.
    (utc(2026, 3, 10, 10), "monthly", 1, utc(2026, 4, 10, 10), False, utc(2026, 4, 10, 10)),
    (utc(2026, 3, 10, 10), "monthly", 1, utc(2026, 4, 10, 10, 0, 1), False, utc(2026, 5, 10, 10)),
    # Month ends: a January 31st anchor renews on February 28th (29th in a leap year), then March 31st.
    (utc(2026, 1, 31, 8), "monthly", 1, utc(2026, 2, 20), False, utc(2026, 2, 28, 8)),
    (utc(2028, 1, 31, 8), "monthly", 1, utc(2028, 3, 1), False, utc(2028, 3, 31, 8)),
    (utc(2028, 1, 31, 8), "monthly", 1, utc(2028, 2, 29, 8), False, utc(2028, 2, 29, 8)),
    # Quarterly and yearly step by their term.
    (utc(2026, 1, 15), "quarterly", 3, utc(2026, 4, 16), False, utc(2026, 7, 15)),
    (utc(2026, 1, 15), "yearly", 12, utc(2026, 2, 1), False, utc(2027, 1, 15)),
    # A renewal already invoiced (in flight, or in dunning) keeps its price: the next one.
    (utc(2026, 3, 10, 10), "monthly", 1, utc(2026, 4, 1), True, utc(2026, 5, 10, 10)),
])
def test_a_moved_price_starts_at_the_first_renewal_after_the_notice(anchor, term, end_offset, earliest, pending,
                                                                  expected):
    sub = subscription(anchor, term, term_end_offset=end_offset)
    sub.pending_invoice_id = "inv_1" if pending else None
    assert first_renewal_from(sub, earliest) == expected


def test_the_price_as_sold_wins_over_the_catalog_until_a_moved_price_is_due():
    sub = subscription(utc(2026, 3, 10, 10))
    assert sold_price(sub, CATALOG) == 3000  # a row from before prices were kept: the catalog's
    sub.price = 2700
    assert sold_price(sub, CATALOG) == 2700 and next_renewal_price(sub, CATALOG) == 2700
    sub.next_price, sub.next_price_from = 3500, utc(2026, 5, 10, 10)
    assert price_of_term_from(sub, CATALOG, utc(2026, 4, 10, 10)) == 2700
    assert price_of_term_from(sub, CATALOG, utc(2026, 5, 10, 10)) == 3500

    assert charge_term_from(sub, CATALOG, utc(2026, 4, 10, 10)) == 2700
    assert (sub.price, sub.next_price) == (2700, 3500)  # the move still waits
    assert charge_term_from(sub, CATALOG, utc(2026, 5, 10, 10)) == 3500
    assert (sub.price, sub.next_price, sub.next_price_from) == (3500, None, None)


def test_a_scheduled_change_renews_at_the_price_it_was_sold_at():
    sub = subscription(utc(2026, 3, 10, 10), price=3000)
    sub.scheduled_plan, sub.scheduled_term, sub.scheduled_price = "ultimate", "monthly", 4800
    assert next_renewal_price(sub, CATALOG) == 4800
    sub.scheduled_price = None  # scheduled before prices were kept: the catalog's
    assert next_renewal_price(sub, CATALOG) == 5000


@given(anchor=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31),
                           timezones=st.just(timezone.utc)),
       term=st.sampled_from([t.value for t in Term]), terms_done=st.integers(1, 10),
       notice_seconds=st.integers(0, 3 * 366 * 86400), pending=st.booleans())
def test_the_moved_price_starts_at_the_earliest_renewal_the_notice_allows(anchor, term, terms_done, notice_seconds,
                                                                          pending):
    months = Term(term).months
    sub = subscription(anchor, term, term_end_offset=terms_done * months)
    sub.pending_invoice_id = "inv_1" if pending else None
    now = add_months(anchor, (terms_done - 1) * months)  # somewhere in the current term
    earliest = now + timedelta(seconds=notice_seconds)
    start = first_renewal_from(sub, earliest)
    renewals = [add_months(anchor, k * months) for k in range(terms_done, terms_done + 60)]
    assert start in renewals and start >= earliest  # a renewal, with the notice given
    if pending:
        assert start != sub.current_term_end  # the renewal already invoiced keeps its price
    previous = renewals[renewals.index(start) - 1] if renewals.index(start) else None
    if previous is not None and not (pending and previous == sub.current_term_end):
        assert previous < earliest  # and no earlier renewal would have done
