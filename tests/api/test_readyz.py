"""GET /readyz: ready when the database answers, its migrations are current and a worker ran
within the last minute; otherwise 503 saying which."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from api_kit import assert_error
from creditflow.kit.db.heartbeats import beat
from creditflow.worker.runner import tick


def test_ready_only_while_a_worker_runs(any_api):
    api = any_api
    error = assert_error(api.get("/readyz", key=None), 503, "not_ready")
    assert "no worker ran" in error["message"]

    tick(api.ctx)  # a worker's round records its heartbeat
    assert api.get("/readyz", key=None).json() == api.get("/healthz", key=None).json()
    assert api.get("/readyz", key=None).status_code == 200

    with api.ctx.db.transaction() as session:  # the only worker went quiet two minutes ago
        session.execute(text("DELETE FROM worker_heartbeats"))
        beat(session, "gone", api.ctx.clock.now() - timedelta(minutes=2))
    assert_error(api.get("/readyz", key=None), 503, "not_ready")


def test_not_ready_on_a_database_behind_the_code(any_api):
    api = any_api
    tick(api.ctx)
    with api.ctx.db.transaction() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '0009'"))
    error = assert_error(api.get("/readyz", key=None), 503, "not_ready")
    assert "creditflow migrate" in error["message"] and "0009" in error["message"]
