"""bench/spend.py runs (tiny) and reports what its README summary is built from, so it can't rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CASES = {"sqlite": "sqlite-1", "postgres": "postgres-1,postgres-8,postgres-hot-8"}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_spend_benchmark_runs(request, tmp_path, backend):
    if backend == "postgres":
        request.getfixturevalue("_pg_admin")  # skips (or fails in CI) without a server
    out = tmp_path / "spend.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "spend.py"), "--tiny", "--cases", CASES[backend], "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
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
