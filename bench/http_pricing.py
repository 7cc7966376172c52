#!/usr/bin/env python
"""Benchmark: estimates, and spends by options against spends by amount, through the HTTP API.

    .venv/bin/python bench/http_pricing.py                # SQLite, the full ladders
    .venv/bin/python bench/http_pricing.py --db postgres  # PostgreSQL (CREDITFLOW_TEST_POSTGRES_URL)
    .venv/bin/python bench/http_pricing.py --tiny         # a few seconds, what the test suite runs

The same machinery as bench/http_spends.py (a real `creditflow serve` process, an open-loop load
of keep-alive connections, latency from the moment a request was due), in one run:

- `estimate`: `POST /v1/customers/{id}/credits/estimate {"feature": "image_fast", "options":
  {"resolution": "2k", "count": 4, "enhancer": true}}` (pure arithmetic on the loaded catalog,
  after one read of the customer's subscription);
- `spend_amount`: `POST .../credits/spend {"amount": "1.5", "feature": "standard_models", ...}`;
- `spend_options`: `POST .../credits/spend {"options": {"count": 3}, "feature": "standard_models",
  ...}`: the same spend priced by the catalog (standard_models gets a cost of 0.5 per unit in the
  benchmark's catalog, so both spends take 1.5 credits), which must cost at most 10% more;
- `bare`: the constant endpoint, for the estimate's goal (at least 0.7 of its throughput).

Goals: estimate throughput >= 0.7 x bare; estimate p99 under 10 ms at 500/s; a spend by options
at most 10% slower than by amount (throughput, and server CPU per answer). Results go to
bench/results/http_pricing.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import http_spends as base  # noqa: E402  (the benchmark machinery: servers, load, ladders)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "http_pricing.json"
GOALS = {"estimate_vs_bare": 0.70, "estimate_p99_rate": 500, "estimate_max_p99_ms": 10.0,
         "options_max_slowdown": 0.10}
PRICED_STANDARD = ("  standard_models: {name: Standard models}",
                   "  standard_models:\n    name: Standard models\n    cost:\n      base: \"0.5\"\n"
                   "      options:\n        count: {per_unit: true, min: 1, max: 8, default: 1}")


def bench_catalog(directory: str) -> str:
    """The sample catalog with standard_models priced, so a spend by options and one by amount
    take the same path and the same credits."""
    from creditflow.catalog.loader import default_catalog_path, load_catalog

    text = Path(default_catalog_path()).read_text(encoding="utf-8")
    old, new = PRICED_STANDARD
    assert text.count(old) == 1
    path = Path(directory) / "catalog.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    load_catalog(path)  # valid
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--estimate-rates", default="250,500,1000,1500,2000,3000,4000")
    parser.add_argument("--spend-rates", default="100,200,400,600")
    parser.add_argument("--bare-rates", default="500,1000,2000,3000,4000")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--tiny", action="store_true", help="two low rates for a second each")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.tiny:
        args.estimate_rates = args.spend_rates = args.bare_rates = "20,50"
        args.duration, args.customers, args.connections = 1.0, 5, 16
    rates = {name: [float(r) for r in value.split(",")] for name, value in (
        ("estimate", args.estimate_rates), ("spend_amount", args.spend_rates), ("spend_options", args.spend_rates),
        ("bare", args.bare_rates))}

    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CREDITFLOW_CATALOG"] = bench_catalog(tmp)
        drop = None
        if args.db == "postgres":
            db_url, drop = base.postgres_database()
        else:
            db_url = f"sqlite:///{tmp}/bench.db"
        try:
            customers = base.seed(db_url, args.customers)
            run_id = uuid.uuid4().hex[:8]
            headers = {"Authorization": f"Bearer {base.KEY}", "Content-Type": "application/json"}

            def post(path_end: str, body: dict, i: int) -> bytes:
                return base.http_request("POST", f"/v1/customers/{customers[i % len(customers)]}/credits/{path_end}",
                                         json.dumps(body).encode(), headers)

            makers = {
                "estimate": lambda i: post("estimate", {"feature": "image_fast", "options": {
                    "resolution": "2k", "count": 4, "enhancer": True}}, i),
                "spend_amount": lambda i: post("spend", {"amount": "1.5", "feature": "standard_models",
                                                         "reference": f"{run_id}-a-{i}"}, i),
                "spend_options": lambda i: post("spend", {"options": {"count": 3}, "feature": "standard_models",
                                                          "reference": f"{run_id}-o-{i}"}, i),
            }
            port = base.free_port()
            server = base.start_spend_server(db_url, port)
            try:
                for name, make in makers.items():
                    print(f"{name} ({args.db}):", flush=True)
                    for i in range(10):  # warm up connections and caches
                        asyncio.run(base.run_rate(port, lambda j: make(10**9 + i * 10 + j), 10, 0.2, 2))
                    rows[name] = base.ladder(port, make, rates[name], args.duration, args.connections, server.pid)
            finally:
                base.stop(server)
            port = base.free_port()
            server = base.start_bare_server(port)
            bare = base.http_request("GET", "/bare")
            try:
                print("bare:", flush=True)
                asyncio.run(base.run_rate(port, lambda i: bare, 50, 0.5, 4))
                rows["bare"] = base.ladder(port, lambda i: bare, rates["bare"], args.duration, args.connections,
                                           server.pid)
            finally:
                base.stop(server)
        finally:
            if drop:
                drop()

    def best(name: str) -> dict:
        return max(rows[name], key=lambda r: r["achieved_rate"])

    at_goal = next((r for r in rows["estimate"] if r["target_rate"] == GOALS["estimate_p99_rate"]), None)
    amount, options = best("spend_amount"), best("spend_options")
    summary = {
        "estimate_throughput_per_s": best("estimate")["achieved_rate"],
        "bare_throughput_per_s": best("bare")["achieved_rate"],
        "estimate_vs_bare": round(best("estimate")["achieved_rate"] / best("bare")["achieved_rate"], 3)
        if best("bare")["achieved_rate"] else None,
        "estimate_p99_ms_at_500_per_s": at_goal["p99_ms"] if at_goal else None,
        "spend_amount_throughput_per_s": amount["achieved_rate"],
        "spend_options_throughput_per_s": options["achieved_rate"],
        "server_cpu_ms_per_spend_amount": amount["server_cpu_ms_per_ok"],
        "server_cpu_ms_per_spend_options": options["server_cpu_ms_per_ok"],
    }
    cpu_a, cpu_o = amount["server_cpu_ms_per_ok"], options["server_cpu_ms_per_ok"]
    summary["goals_met"] = {
        "estimate_vs_bare": bool(summary["estimate_vs_bare"] and summary["estimate_vs_bare"] >= GOALS["estimate_vs_bare"]),
        "estimate_p99_at_500_per_s": bool(at_goal and at_goal["not_sent"] == 0 and at_goal["p99_ms"] is not None
                                          and at_goal["p99_ms"] < GOALS["estimate_max_p99_ms"]),
        "options_within_10_percent": bool(
            amount["achieved_rate"] and options["achieved_rate"] >= amount["achieved_rate"] * (1 - GOALS["options_max_slowdown"])
            and (cpu_a is None or cpu_o is None or cpu_o <= cpu_a * (1 + GOALS["options_max_slowdown"]))),
    }
    result = {"benchmark": "http_pricing", "tiny": args.tiny, "database": args.db,
              "duration_s_per_rate": args.duration, "connections": args.connections, "customers": args.customers,
              "goals": GOALS, "summary": summary, **rows,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                          "load_average_1m_at_end": round(os.getloadavg()[0], 2)}}
    base.write_report(args.out, result, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
