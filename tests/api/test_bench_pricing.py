"""bench/http_pricing.py runs end to end at a tiny size and writes its JSON."""

from __future__ import annotations

from bench_kit import run_tiny


def test_pricing_benchmark_tiny(tmp_path):
    result = run_tiny("http_pricing.py", tmp_path / "http_pricing.json", timeout=300)
    for kind in ("estimate", "spend_amount", "spend_options", "bare"):
        assert [row["target_rate"] for row in result[kind]] == [20.0, 50.0]
        for row in result[kind]:
            assert row["ok"] > 0 and row["errors"] == 0, (kind, row)
            assert row["statuses"] == {"200": row["ok"]}
    assert set(result["summary"]["goals_met"]) == {"estimate_vs_bare", "estimate_p99_at_500_per_s",
                                                   "options_within_10_percent"}
