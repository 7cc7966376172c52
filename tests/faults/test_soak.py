"""A bounded soak of mixed traffic (bench/soak.py) on PostgreSQL: spends and holds from several
clients on the same customers' credits, test-clock renewals, plan changes (an immediate
upgrade, a scheduled downgrade, a cancelled one), top-ups, refunds, and webhooks to a receiver
that refuses some first deliveries. The soak checks its invariants while the traffic runs and
at the end; this test then checks the database it left with the battery's own invariants."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fault_kit import check_invariants

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_soak_of_mixed_traffic_keeps_every_invariant(pg_db, tmp_path):
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, str(SOAK), "--database-url", pg_db.url, "--seconds", "6", "--threads", "4",
                           "--customers", "3", "--check-every", "3", "--fail-one-in", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    report = json.loads(out.read_text())
    assert done.returncode == 0 and report["ok"], done.stdout[-4000:] + done.stderr[-3000:]
    assert report["checks_during"], "no check ran while the traffic did"
    answers = report["answers"]
    # Every kind of traffic really happened, and succeeded at least once.
    for op, ok in {"spend": "200", "hold": "201", "renewal": "200", "plan_change": "200", "top_up": "201"}.items():
        assert answers.get(op, {}).get(ok), (op, answers)
    assert report["webhooks"]["refused_once_on_purpose"] > 0
    assert report["webhooks"]["acknowledged"] == report["webhooks"]["events"] > 0
    counts = check_invariants(pg_db.url, tmp_path)
    assert counts["paid"] > 4  # more than the first purchases: renewals, upgrades, top-ups
