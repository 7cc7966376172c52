"""bench/ledger_check.py runs (tiny) on both databases and verifies what it measures, so it can't rot."""

from __future__ import annotations

import pytest

from bench_kit import run_tiny


@pytest.mark.postgres
def test_the_ledger_check_benchmark_runs(request, tmp_path):
    request.getfixturevalue("_pg_admin")  # skips (or fails in CI) without a server
    report = run_tiny("ledger_check.py", tmp_path / "ledger_check.json")
    assert [r["backend"] for r in report["runs"]] == ["sqlite", "postgres"]
    for result in report["runs"]:
        assert result["verified"] == {"full_clean": True, "incremental_clean": True,
                                      "incremental_saw_the_new_entries": True, "checkpoint_equals_ledger": True}
        assert result["entries"] == 300 * 4 + 40
        assert result["full_seconds"] > 0 and result["incremental_seconds"] > 0
    assert report["summary"]["all_verified"] is True
    assert set(report["summary"]["goals"]) == {"sqlite_incremental_under_5_percent_of_full",
                                               "postgres_incremental_under_5_percent_of_full"}
