"""bench/history_pages.py runs (tiny) on both databases and reports every page it measures, so it can't rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PAGES = {"ledger_first_page", "ledger_middle_of_a_long_history", "events_of_a_long_history", "events_of_everyone"}


@pytest.mark.postgres
def test_the_history_pages_benchmark_runs(request, tmp_path):
    request.getfixturevalue("_pg_admin")  # skips (or fails in CI) without a server
    out = tmp_path / "history_pages.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "history_pages.py"), "--tiny", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
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
