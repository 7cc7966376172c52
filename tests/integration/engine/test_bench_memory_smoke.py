"""The memory benchmark runs end to end at a tiny size: real `creditflow serve` and `creditflow
worker` processes, their RSS sampled, and the work they did verified (the 10% goal is for the
full runs, not for a few seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "memory.py"


def _assert_report(report: dict, backend: str) -> None:
    assert (report["benchmark"], report["tiny"], report["backend"]) == ("memory", True, backend)
    assert report["all_verified"] is True
    assert set(report["parts"]) == set(report["goals_met"]) == {"serve", "worker"}
    assert len(report["machine"]["load_average_at_start"]) == 3
    for part in report["parts"].values():
        samples = part["samples"]
        assert len(samples) >= 3
        assert [t for t, _ in samples] == sorted(t for t, _ in samples)
        # Once started (the first sample may be taken as the process starts): tens of MiB.
        assert all(kb > 10_000 for _, kb in samples[1:])
        assert part["rss_kb_at_end"] == samples[-1][1]
        assert part["rss_kb_peak"] == max(kb for _, kb in samples)
        assert part["growth_end_vs_warmup"] == pytest.approx(part["rss_kb_at_end"] / part["rss_kb_after_warmup"],
                                                             abs=1e-4)
        assert part["goal_within_10pct"]["met"] is (part["growth_end_vs_warmup"] <= 1.10)
        assert isinstance(part["rss_kb_per_minute_second_half"], float)
        assert report["goals_met"][part["part"]] is part["goal_within_10pct"]["met"]
        assert part["verified"]["ok"], part["verified"]

    serve = report["parts"]["serve"]
    found = serve["verified"]["found"]
    # Every kind of request was sent and answered as it should be.
    assert set(serve["requests_by_kind"]) == {"spend", "replay", "unknown_customer", "insufficient"}
    assert found["answered_404"] > 0 and found["answered_other_4xx"] > 0
    assert found["answered_5xx"] == found["broken_connections"] == found["ledger_check_exit_code"] == 0
    assert 0 < found["spends_in_database"] <= found["answered_2xx"] == serve["ok"]

    worker = report["parts"]["worker"]
    assert worker["renewed"] == worker["verified"]["found"]["renewal_invoices_paid"] > 0
    assert worker["drained"] is (worker["renewed"] == worker["subscriptions_due"])


def test_bench_memory_tiny_on_sqlite(tmp_path):
    out = tmp_path / "memory.json"

    done = subprocess.run([sys.executable, str(BENCH), "--tiny", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    _assert_report(json.loads(out.read_text()), "sqlite")


@pytest.mark.postgres
def test_bench_memory_tiny_on_postgres(tmp_path, _pg_admin):
    out = tmp_path / "memory.json"

    done = subprocess.run([sys.executable, str(BENCH), "--tiny", "--backend", "postgres", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    _assert_report(json.loads(out.read_text()), "postgres")
