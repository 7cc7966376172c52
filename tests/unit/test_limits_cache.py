"""`governed(catalog)` is cached per catalog, and the cache stays small however many catalogs a
process loads (each entry keeps its catalog alive)."""

from __future__ import annotations

import dataclasses

from creditflow.catalog.loader import load_catalog
from creditflow.credits import limits


def test_many_catalogs_leave_a_bounded_cache_and_each_gets_its_own_answer():
    sample = load_catalog()
    expected = frozenset(code for plan in sample.plans.values() for code in (*plan.unlimited, *plan.limits))
    emptied = {code: dataclasses.replace(plan, unlimited={}, limits={}) for code, plan in sample.plans.items()}

    for n in range(200):
        # Alternately the sample's plans and the same with no limit: a cached answer of the other
        # kind of catalog would show.
        catalog = dataclasses.replace(sample, plans=dict(sample.plans) if n % 2 else emptied)
        assert limits.governed(catalog) == (expected if n % 2 else frozenset())
        assert limits.governed(catalog) is limits.governed(catalog)  # the cached set, not a new one

    assert expected  # the sample catalog has limits or windows, so both answers differ
    assert len(limits._governed) <= 8
