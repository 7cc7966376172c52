"""bench/history_pages.py runs (tiny) on both databases and reports every page it measures, so it can't rot."""

from __future__ import annotations

import pytest

from bench_kit import run_tiny

PAGES = {"ledger_first_page", "ledger_middle_of_a_long_history", "events_of_a_long_history", "events_of_everyone"}


@pytest.mark.postgres
def test_the_history_pages_benchmark_runs(request, tmp_path):
    request.getfixturevalue("_pg_admin")  # skips (or fails in CI) without a server
    report = run_tiny("history_pages.py", tmp_path / "history_pages.json")
    assert [r["backend"] for r in report["runs"]] == ["sqlite", "postgres"]
    for result in report["runs"]:
        assert result["small"]["rows_each"] == 200 + 3 * 400 and result["large"]["rows_each"] == 2_000 + 3 * 400
        assert result["large"]["customers"] > result["small"]["customers"]
        for size in ("small", "large"):
            assert set(result[size]["pages"]) == PAGES
            for page in result[size]["pages"].values():
                assert 0 < page["p50_ms"] <= page["p99_ms"]
        assert set(result["p99_large_to_small"]) == PAGES
    assert len(report["summary"]["goals"]) == 2 * len(PAGES)
