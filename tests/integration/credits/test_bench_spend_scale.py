"""bench/spend_scale.py runs (tiny) on two partitioned PostgreSQL databases and checks what it
counted, so it can't rot."""

from __future__ import annotations

import pytest

from bench_kit import run_tiny


@pytest.mark.postgres
def test_the_spend_at_scale_benchmark_runs(request, tmp_path):
    request.getfixturevalue("_pg_admin")  # skips (or fails in CI) without a server
    report = run_tiny("spend_scale.py", tmp_path / "spend_scale.json")
    assert report["summary"]["all_verified"]
    small, large = report["small"], report["large"]
    assert small["partitioned"] and large["partitioned"] and large["partitions"] >= 13
    assert large["ledger_entries"] > 10 * small["ledger_entries"] and large["customers"] > small["customers"]
    for size in (small, large):
        assert size["spends"] > 0 and size["new_spends_recorded"] == size["new_spends_counted"]
        assert 0 < size["p50_ms"] <= size["p99_ms"]
    assert report["large_to_small"] == round(large["spends_per_second"] / small["spends_per_second"], 3)
    assert set(report["summary"]["goals"]) == {"large_at_least_0.8_of_small"}
