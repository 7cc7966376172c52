"""bench/spend.py runs (tiny) and reports what its README summary is built from, so it can't rot."""

from __future__ import annotations

import pytest

from bench_kit import run_tiny

CASES = {"sqlite": "sqlite-1", "postgres": "postgres-1,postgres-8,postgres-hot-8"}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_spend_benchmark_runs(request, tmp_path, backend):
    if backend == "postgres":
        request.getfixturevalue("_pg_admin")  # skips (or fails in CI) without a server
    report = run_tiny("spend.py", tmp_path / "spend.json", "--cases", CASES[backend])
    assert [r["case"] for r in report["runs"]] == CASES[backend].split(",")
    for result in report["runs"]:
        assert result["verified"]["ok"], result["verified"]
        assert result["verified"]["ledger_problems"] == []
        for contestant in ("service", "baseline"):
            assert result[contestant]["spends"] > 0
            assert result[contestant]["spends_per_second"] > 0
            assert set(result[contestant]["latency_ms"]) == {"p50", "p95", "p99", "mean"}
        assert result["ratio_to_baseline"] > 0
    assert report["summary"]["all_verified"] is True
    assert set(report["summary"]["goals"]) == {"service_at_least_half_of_baseline",
                                               "postgres_8_clients_at_least_1500_per_second"}
