"""Listing and revoking API keys: with an admin key through the API, or with `creditflow keys
list|revoke`; a revoked key is refused by every API process within a second."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time

import httpx
from sqlalchemy import select

from api_kit import SERVER_KEY, SUPPORT_KEY, assert_error, make_api

from creditflow.auth.service import Principal, hash_key
from creditflow.support.models import AuditRecord

ADMIN_KEY = "sk_test_admin_0123456789"
BOOTSTRAP = f"{SERVER_KEY}:server,{SUPPORT_KEY}:support,{ADMIN_KEY}:admin"
CLI = [sys.executable, "-m", "creditflow.cli"]


def _key_id(api, secret: str) -> str:
    from creditflow.auth.models import ApiKey

    with api.ctx.db.transaction(readonly=True) as session:
        return session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(secret)))


def test_an_admin_key_lists_and_revokes_keys_and_others_may_not(sqlite_db):
    api = make_api(sqlite_db, bootstrap_keys=BOOTSTRAP)
    for key in (SERVER_KEY, SUPPORT_KEY):
        assert_error(api.get("/v1/api_keys", key=key), 403, "forbidden")
        assert_error(api.post(f"/v1/api_keys/{_key_id(api, SERVER_KEY)}/revoke", key=key), 403, "forbidden")
    assert api.get("/v1/catalog", key=SERVER_KEY).status_code == 200  # nothing was revoked

    listed = api.ok("GET", "/v1/api_keys", key=ADMIN_KEY)
    assert listed["object"] == "list" and listed["has_more"] is False
    assert sorted(k["scope"] for k in listed["data"]) == ["admin", "server", "support"]
    server = next(k for k in listed["data"] if k["scope"] == "server")
    assert set(server) == {"id", "object", "prefix", "scope", "created_at", "revoked_at"}  # no secret, no hash
    assert server["object"] == "api_key" and server["prefix"] == SERVER_KEY[:12] and server["revoked_at"] is None
    first = api.ok("GET", "/v1/api_keys?limit=1", key=ADMIN_KEY)
    assert len(first["data"]) == 1 and first["has_more"] is True
    rest = api.ok("GET", f"/v1/api_keys?starting_after={first['data'][0]['id']}", key=ADMIN_KEY)["data"]
    assert [k["id"] for k in first["data"] + rest] == [k["id"] for k in listed["data"]]

    revoked = api.ok("POST", f"/v1/api_keys/{server['id']}/revoke", key=ADMIN_KEY)
    assert revoked["id"] == server["id"] and revoked["revoked_at"].endswith("Z")
    time.sleep(0.6)  # past this process's cache of the key
    assert_error(api.get("/v1/catalog", key=SERVER_KEY), 401, "unauthorized")
    assert_error(api.post(f"/v1/api_keys/{server['id']}/revoke", key=ADMIN_KEY), 409, "already_revoked")
    assert_error(api.post("/v1/api_keys/key_nope/revoke", key=ADMIN_KEY), 404, "not_found", "id")
    again = {k["id"]: k for k in api.ok("GET", "/v1/api_keys", key=ADMIN_KEY)["data"]}
    assert again[server["id"]]["revoked_at"] == revoked["revoked_at"]  # still listed, as revoked
    assert api.get("/v1/catalog", key=SUPPORT_KEY).status_code == 200  # the others still work

    with sqlite_db.transaction(readonly=True) as session:
        audits = list(session.scalars(select(AuditRecord).where(AuditRecord.action == "api_key.revoke")))
    assert [(a.outcome, a.details["key"]) for a in audits] == [
        ("succeeded", server["id"]), ("failed", server["id"]), ("failed", "key_nope")]


def test_an_admin_key_can_do_what_a_support_key_can():
    assert Principal("key_a", "admin").is_support and Principal("key_a", "admin").can("server")
    assert not Principal("key_s", "support").can("admin") and not Principal("key_x", "server").is_support
    assert not Principal("key_m", "unknown").can("server")


def _serve(db, port: int) -> subprocess.Popen:
    env = {**os.environ, "CREDITFLOW_DATABASE_URL": db.url, "CREDITFLOW_SECRET_KEY": "s3cret"}
    env.pop("CREDITFLOW_BOOTSTRAP_KEYS", None)
    return subprocess.Popen(CLI + ["serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate",
                                   "--no-worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _free_port() -> int:
    import socket

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


def test_a_key_revoked_in_one_process_is_refused_by_another_within_a_second(db):
    api = make_api(db, bootstrap_keys=BOOTSTRAP)  # this process, on the same database
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    other = _serve(db, port)
    try:
        _wait_healthy(url, other)
        headers = {"Authorization": f"Bearer {SERVER_KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=5) as client:
            assert client.get("/v1/catalog").status_code == 200  # the other process now holds the key

            key_id = _key_id(api, SERVER_KEY)
            gc.collect()  # now, rather than a full collection pausing this process while it watches
            api.ok("POST", f"/v1/api_keys/{key_id}/revoke", key=ADMIN_KEY)
            revoked_at = time.monotonic()
            while (status := client.get("/v1/catalog").status_code) == 200 and time.monotonic() - revoked_at < 5:
                time.sleep(0.02)
            refused_after = time.monotonic() - revoked_at
        assert status == 401
        assert refused_after < 1.0, f"the other process took {refused_after:.2f} s to refuse the key"
    finally:
        other.terminate()
        other.wait(timeout=20)


def test_keys_list_and_revoke_commands(sqlite_db, tmp_path):
    api = make_api(sqlite_db, bootstrap_keys=BOOTSTRAP)
    env = {**os.environ, "CREDITFLOW_DATABASE_URL": sqlite_db.url}

    def run(*args):
        return subprocess.run(CLI + ["keys", *args], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)

    listed = run("list")
    assert listed.returncode == 0, listed.stderr
    server_id = _key_id(api, SERVER_KEY)
    line = next(line for line in listed.stdout.splitlines() if line.startswith(server_id))
    assert "server" in line and SERVER_KEY[:12] in line and "active" in line
    assert SERVER_KEY not in listed.stdout  # only the prefix
    assert len(listed.stdout.splitlines()) == 3

    revoked = run("revoke", server_id)
    assert revoked.returncode == 0 and server_id in revoked.stdout, revoked.stderr
    time.sleep(0.6)
    assert_error(api.get("/v1/catalog", key=SERVER_KEY), 401, "unauthorized")
    assert server_id not in run("list").stdout  # revoked keys only with --all
    everything = run("list", "--all").stdout
    assert f"{server_id}  server" in everything and "revoked 20" in everything

    again = run("revoke", server_id)
    assert again.returncode == 1 and "already revoked" in again.stderr
    unknown = run("revoke", "key_nope")
    assert unknown.returncode == 1 and "no such API key" in unknown.stderr
    assert api.get("/v1/catalog", key=SUPPORT_KEY).status_code == 200
