"""bench/http_spends.py runs end to end at a tiny size and writes its JSON."""

from __future__ import annotations

from bench_kit import run_tiny


def test_http_benchmark_tiny(tmp_path):
    result = run_tiny("http_spends.py", tmp_path / "http.json", timeout=300)
    assert result["tiny"] is True and result["database"] == "sqlite"
    for kind in ("spend", "bare"):
        rows = result[kind]
        assert [row["target_rate"] for row in rows] == [20.0, 50.0]
        for row in rows:
            assert row["due"] == row["sent"] + row["not_sent"]
            assert row["ok"] > 0 and row["errors"] == 0, row
            assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
            assert row["server_cpu_ms_per_ok"] is None or row["server_cpu_ms_per_ok"] > 0
    assert result["spend"][0]["statuses"] == {"200": result["spend"][0]["ok"]}
    summary = result["summary"]
    assert summary["spend_throughput_per_s"] > 0 and summary["bare_throughput_per_s"] > 0
    assert set(summary["goals_met"]) == {"p99_at_200_per_s", "throughput_vs_bare"}
    # Every answered spend was a new one: no reference was sent twice (a replay is not a spend).
    assert summary["spends_written"] == summary["spends_answered"] > 0
    assert summary["rounds"] == [summary["throughput_vs_bare"]]
