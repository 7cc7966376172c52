"""`creditflow serve`, `creditflow keys create` and `creditflow demo`, run as commands."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx

from creditflow.migrations.runner import current, head

CLI = [sys.executable, "-m", "creditflow.cli"]


def _run(args, cwd, env=None, timeout=120):
    return subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not answer /healthz")


def test_serve_migrates_bootstraps_keys_and_serves(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CREDITFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
           "CREDITFLOW_BOOTSTRAP_KEYS": "sk_boot_server:server,sk_boot_support:support",
           "CREDITFLOW_TEST_CLOCKS": "1", "CREDITFLOW_SECRET_KEY": "s3cret"}
    process = subprocess.Popen(CLI + ["serve", "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_healthy(url, process)
        assert current(env["CREDITFLOW_DATABASE_URL"]) == head()
        headers = {"Authorization": "Bearer sk_boot_server"}
        assert httpx.get(f"{url}/v1/catalog", headers=headers).status_code == 200
        assert httpx.get(f"{url}/v1/catalog", headers={"Authorization": "Bearer nope"}).status_code == 401
        clock = httpx.post(f"{url}/v1/test_clocks", json={"frozen_time": "2026-01-01T00:00:00Z"}, headers=headers)
        assert clock.status_code == 201
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "creditflow"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_without_test_clocks_and_migrations(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'plain.db'}"
    assert _run(["migrate", "--database-url", db_url], tmp_path).returncode == 0
    key = _run(["keys", "create", "--scope", "server", "--database-url", db_url], tmp_path)
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip()
    assert re.fullmatch(r"sk_server_[A-Za-z0-9_-]{40,}", secret)
    port = _free_port()
    env = {**os.environ, "CREDITFLOW_DATABASE_URL": db_url}
    env.pop("CREDITFLOW_TEST_CLOCKS", None)
    process = subprocess.Popen(CLI + ["serve", "--port", str(port), "--no-migrate", "--no-worker"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", process)
        response = httpx.post(f"http://127.0.0.1:{port}/v1/test_clocks", json={"frozen_time": "2026-01-01T00:00:00Z"},
                              headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_keys_create_refuses_an_unknown_scope(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'k.db'}"
    _run(["migrate", "--database-url", db_url], tmp_path)
    run = _run(["keys", "create", "--scope", "root", "--database-url", db_url], tmp_path)
    assert run.returncode == 2 and "scope" in run.stderr and run.stdout == ""


def test_demo_print_only_sets_up_a_subscribed_customer_a_key_and_a_link(tmp_path):
    run = _run(["demo", "--print-only", "--port", "8123"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "creditflow.db").exists()
    key = re.search(r"server API key:\s+(sk_demo_server_\S+)", run.stdout).group(1)
    metrics_key = re.search(r"metrics:\s+curl -H 'Authorization: Bearer (sk_demo_metrics_\S+)' \S+/metrics",
                            run.stdout).group(1)
    password = re.search(r"support console:\s+http://127.0.0.1:8123/console\s+user demo, password (\S+)",
                         run.stdout).group(1)
    customer = re.search(r"demo customer:\s+(cus_\S+)", run.stdout).group(1)
    link = re.search(r"billing page:\s+(\S+)", run.stdout).group(1)
    assert link.startswith("http://127.0.0.1:8123/billing/session/ps_")

    from creditflow.kit.db import Database

    from api_kit import make_api

    db = Database(f"sqlite:///{tmp_path / 'creditflow.db'}")
    try:
        api = make_api(db)
        sub = api.ok("GET", f"/v1/customers/{customer}/subscription", key=key)
        assert (sub["plan"], sub["term"], sub["status"]) == ("standard", "monthly", "active")
        assert api.get("/metrics", key=metrics_key).status_code == 200
        with db.transaction(readonly=True) as session:
            from creditflow.support.service import authenticate_staff

            assert authenticate_staff(session, "demo", password) is not None
    finally:
        db.dispose()
    again = _run(["demo", "--print-only"], tmp_path)  # a second run reuses the customer
    assert again.returncode == 0 and customer in again.stdout
    db = Database(f"sqlite:///{tmp_path / 'creditflow.db'}")
    try:  # ... and replaces the demo's keys instead of adding two more each time
        with db.transaction(readonly=True) as session:
            from sqlalchemy import text

            assert session.scalar(text("SELECT count(*) FROM api_keys WHERE prefix LIKE 'sk_demo%'")) == 2
        assert make_api(db).get(f"/v1/customers/{customer}", key=key).status_code == 401
    finally:
        db.dispose()


def test_demo_refuses_a_busy_port_before_creating_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run = _run(["demo", "--port", str(busy.getsockname()[1])], tmp_path)
    assert run.returncode == 1
    assert "Choose another with --port" in run.stderr
    assert not (tmp_path / "creditflow.db").exists()


def test_demo_serves(tmp_path):
    port = _free_port()
    process = subprocess.Popen(CLI + ["demo", "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ})
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    key = re.search(r"server API key:\s+(sk_demo_server_\S+)", output)
    assert key, output
