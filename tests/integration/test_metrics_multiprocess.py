"""Two real `creditflow serve` processes share one PROMETHEUS_MULTIPROC_DIR: either one's
GET /metrics answers for both, and a process that stopped leaves the live gauges (the database
pool) while its counts stay."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from creditflow.migrations.runner import upgrade

SERVER_KEY = "sk_mp_server_0123456789"
METRICS_KEY = "sk_mp_metrics_0123456789"
CREDITFLOW = Path(sys.executable).with_name("creditflow")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(env: dict, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(CREDITFLOW), "serve", "--no-migrate", "--no-worker", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def _wait_ready(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"creditflow serve exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"creditflow serve did not answer within 60 s: {log.read_text()[-3000:]}")


def _scrape(base: str) -> dict:
    response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.slow
def test_two_serve_processes_are_aggregated(tmp_path):
    if not CREDITFLOW.exists():
        pytest.skip("the creditflow command is not installed next to this Python")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url)
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "CREDITFLOW_DATABASE_URL": url,
           "CREDITFLOW_SECRET_KEY": "mp-secret", "CREDITFLOW_LOG_FORMAT": "json",
           "CREDITFLOW_BOOTSTRAP_KEYS": f"{SERVER_KEY}:server,{METRICS_KEY}:metrics"}
    ports = [_free_port(), _free_port()]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [_start(env, ports[0], logs[0])]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        _wait_ready(bases[0], processes[0], logs[0])  # the first creates the bootstrap keys
        processes.append(_start(env, ports[1], logs[1]))
        _wait_ready(bases[1], processes[1], logs[1])
        auth = {"Authorization": f"Bearer {SERVER_KEY}"}
        answered = {}
        for base, count in zip(bases, (3, 5)):
            for _ in range(count):
                response = httpx.get(f"{base}/v1/customers", headers=auth, timeout=10)
                assert response.status_code == 200, response.text
            answered[base] = count

        route = {"method": "GET", "route": "/v1/customers", "status": "200"}
        for base in bases:  # either process answers for both
            samples = _scrape(base)
            assert _value(samples, "creditflow_http_requests_total", **route) == 8
            assert _value(samples, "creditflow_http_request_duration_seconds_count",
                          method="GET", route="/v1/customers") == 8
        pids = {int(name.stem.rsplit("_", 1)[1]) for name in directory.glob("counter_*.db")}
        assert pids == {process.pid for process in processes}
        both = _value(_scrape(bases[0]), "creditflow_db_pool_size")
        assert both > 0

        processes[1].send_signal(signal.SIGTERM)  # stops gracefully: its live gauges go, its counts stay
        processes[1].wait(timeout=30)
        samples = _scrape(bases[0])
        assert _value(samples, "creditflow_http_requests_total", **route) == 8
        assert _value(samples, "creditflow_db_pool_size") == both / 2
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()

    # Their logs are JSON lines, uvicorn's own included; the request lines name the key's id only.
    lines = [json.loads(line) for line in logs[0].read_text().splitlines() if line.startswith("{")]
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines), lines[:5]
    requests = [line for line in lines if line.get("event") == "request" and line.get("route") == "/v1/customers"]
    assert len(requests) == 3 and all(line["api_key_id"].startswith("key_") for line in requests)
    assert SERVER_KEY not in logs[0].read_text() and METRICS_KEY not in logs[0].read_text()
