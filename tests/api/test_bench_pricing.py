"""bench/http_pricing.py runs end to end at a tiny size and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pricing_benchmark_tiny(tmp_path):
    out = tmp_path / "http_pricing.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "http_pricing.py"), "--tiny", "--out", str(out)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    for kind in ("estimate", "spend_amount", "spend_options", "bare"):
        assert [row["target_rate"] for row in result[kind]] == [20.0, 50.0]
        for row in result[kind]:
            assert row["ok"] > 0 and row["errors"] == 0, (kind, row)
            assert row["statuses"] == {"200": row["ok"]}
    assert set(result["summary"]["goals_met"]) == {"estimate_vs_bare", "estimate_p99_at_500_per_s",
                                                   "options_within_10_percent"}
