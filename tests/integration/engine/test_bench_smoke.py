"""The renewal benchmark and the soak run end to end at a tiny size and write the JSON their
READMEs read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "renewals.py"
SOAK = Path(__file__).resolve().parents[3] / "bench" / "soak.py"
MODES = {"postgres-1": ("postgresql", 1), "postgres-2": ("postgresql", 2), "sqlite-1": ("sqlite", 1)}


@pytest.mark.postgres
def test_bench_renewals_tiny_writes_every_field(tmp_path, _pg_admin):
    out = tmp_path / "renewals.json"

    done = subprocess.run([sys.executable, str(BENCH), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["settings"]["sizes"] == [50]
    assert (report["settings"]["max_seconds"], report["settings"]["drained_up_to"]) == (None, 0)
    assert report["machine"]["cpus"] >= 1
    runs = {run["mode"]: run for run in report["runs"]}
    assert set(runs) == set(MODES)
    for mode, (backend, workers) in MODES.items():
        run = runs[mode]
        assert (run["size"], run["backend"], run["workers"]) == (50, backend, workers)
        for contestant in ("engine", "baseline"):
            measured = run[contestant]
            # Both contestants really renewed all 50, exactly once each.
            assert measured["verified"]["ok"], measured["verified"]
            assert measured["verified"]["found"]["renewal_invoices_paid"] == 50
            assert (measured["renewals"], measured["drained"]) == (50, True)
            assert 0 < measured["seconds_to_last_charge"] <= measured["seconds"] + 0.5
            assert set(measured["load_average_1min"]) == {"before", "after"}
            assert measured["seconds"] > 0
            assert measured["renewals_per_second"] == pytest.approx(50 / measured["seconds"], rel=0.01)
            assert measured["renewals_per_second_per_worker"] == pytest.approx(
                measured["renewals_per_second"] / workers, rel=0.01)
            assert measured["cost_ms_per_renewal"] == pytest.approx(
                1000 * measured["seconds"] * workers / 50, rel=0.01)
            # The workers' CPU is part of their wall time (a little more with two of them).
            assert 0 < measured["worker_cpu_ms_per_renewal"] <= measured["cost_ms_per_renewal"] * 1.1
        assert run["ratio_to_baseline"] == pytest.approx(
            run["engine"]["renewals_per_second"] / run["baseline"]["renewals_per_second"], rel=0.01)

    summary = report["summary"]
    assert summary["all_verified"] is True
    assert set(summary["renewals_per_second"]) == set(MODES)
    assert set(summary["ratio_to_baseline"]) == set(MODES)
    assert set(summary["cost_ms_per_renewal"]) == set(MODES)
    assert set(summary["two_workers_vs_one"]["50"]) == {"engine", "baseline"}
    assert summary["cost_growth"] == {}  # one size only: nothing to compare
    goals = summary["goals"]
    assert set(goals) == {"renewals_per_second_per_worker_postgres_at_least_100", "two_workers_at_least_1.6x_one",
                          "cost_per_renewal_within_30pct_across_sizes"}
    assert goals["cost_per_renewal_within_30pct_across_sizes"]["met"] is None
    assert isinstance(goals["two_workers_at_least_1.6x_one"]["met"], bool)


def test_bench_refuses_an_unknown_mode(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), "--modes", "mysql-9", "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown mode" in done.stderr
    assert not (tmp_path / "x.json").exists()


def test_bench_with_a_time_limit_measures_what_was_finished(tmp_path):
    """--max-seconds stops the contestants dead; what they finished is whole and is measured."""
    out = tmp_path / "limited.json"
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "400", "--modes", "sqlite-1", "--max-seconds", "3",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = json.loads(out.read_text())["runs"]
    engine = run["engine"]
    assert engine["verified"]["ok"], engine["verified"]
    assert 0 < engine["renewals"] <= 400
    assert engine["renewals"] == engine["verified"]["found"]["renewal_invoices_paid"]
    # Drained means every renewal was done; the time limit may still stop the round after the last
    # renewal (its webhook fan-out), so all 400 renewed does not prove the round drained.
    if engine["drained"]:
        assert engine["renewals"] == 400
    else:
        assert engine["seconds"] >= 3
    assert engine["renewals_per_second"] == pytest.approx(engine["renewals"] / engine["seconds"], rel=0.01)


def test_bench_soak_tiny_checks_every_invariant(tmp_path):
    out = tmp_path / "soak.json"

    done = subprocess.run([sys.executable, str(SOAK), "--tiny", "--out", str(out)], capture_output=True, text=True,
                          timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert (report["benchmark"], report["database"], report["ok"], report["failed_during"]) == (
        "soak", "sqlite", True, [])
    assert set(report["invariants_at_end"]) == {
        "ledger_check", "at_most_one_charge_per_invoice", "no_5xx_or_broken_connection",
        "payments_and_refunds_settled", "paid_equals_charged", "credits_only_for_paid_invoices",
        "webhooks_all_delivered"}
    assert all(check["ok"] for check in report["invariants_at_end"].values())
    assert report["requests"] > 0 and report["answers"]["spend"]
    assert report["webhooks"]["acknowledged"] == report["webhooks"]["events"] > 0
    assert "soak passed" in done.stdout and "ledger_check" in done.stdout
