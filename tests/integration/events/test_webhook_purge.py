"""Settled webhook deliveries are deleted after the retention period; pending ones never."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from creditflow.context import Context
from creditflow.catalog.loader import load_catalog
from creditflow.events.delivery import purge_settled, retention, run_purge
from creditflow.events.models import WebhookDelivery, WebhookEndpoint
from creditflow.kit.clock import FixedClock
from creditflow.payment.sandbox import SandboxGateway
from creditflow.worker.jobs import JOBS

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def ctx(db):
    return Context(db=db, catalog=load_catalog(), gateway=SandboxGateway(db), clock=FixedClock(NOW))


def _deliveries(ctx, rows: list[tuple[str, timedelta | None]]) -> None:
    """(status, settled this long before NOW or None) per delivery, one endpoint."""
    with ctx.db.transaction() as session:
        session.add(WebhookEndpoint(id="we_1", url="https://example.com/hook", secret="s", events=None,
                                    after_seq=0, created_at=NOW - timedelta(days=400)))
        session.flush()
        for seq, (status, age) in enumerate(rows, start=1):
            session.add(WebhookDelivery(
                endpoint_id="we_1", event_seq=seq, event_id=f"evt_{seq}", customer_id="cus_1", status=status,
                attempts=1, next_attempt_at=NOW - timedelta(days=300), created_at=NOW - timedelta(days=300),
                completed_at=None if age is None else NOW - age))


def _left(ctx) -> list[tuple[str, str]]:
    with ctx.db.transaction(readonly=True) as session:
        return sorted(tuple(row) for row in session.execute(select(WebhookDelivery.event_id, WebhookDelivery.status)))


def test_settled_deliveries_older_than_the_retention_are_deleted(ctx, monkeypatch):
    monkeypatch.delenv("CREDITFLOW_WEBHOOK_RETENTION_DAYS", raising=False)
    _deliveries(ctx, [
        ("delivered", timedelta(days=31)),   # 1: deleted
        ("failed", timedelta(days=45)),      # 2: deleted
        ("delivered", timedelta(days=29)),   # 3: kept, younger than 30 days
        ("pending", None),                   # 4: kept, whatever its age
    ])
    assert run_purge(ctx, NOW, None) == 2
    assert _left(ctx) == [("evt_3", "delivered"), ("evt_4", "pending")]
    assert run_purge(ctx, NOW, None) == 0
    assert run_purge(ctx, NOW + timedelta(days=2), "clk_1") == 0  # real time only
    assert _left(ctx) == [("evt_3", "delivered"), ("evt_4", "pending")]


def test_a_backlog_goes_in_batches(ctx):
    _deliveries(ctx, [("delivered", timedelta(days=40 + n)) for n in range(25)] + [("pending", None)])
    assert purge_settled(ctx, NOW, keep=timedelta(days=30), batch=10, max_batches=2) == 20
    assert purge_settled(ctx, NOW, keep=timedelta(days=30), batch=10) == 5
    with ctx.db.transaction(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_retention_is_configured_in_days_and_0_keeps_everything(ctx, monkeypatch):
    _deliveries(ctx, [("delivered", timedelta(days=8)), ("delivered", timedelta(days=6))])
    monkeypatch.setenv("CREDITFLOW_WEBHOOK_RETENTION_DAYS", "0")
    assert retention() is None and run_purge(ctx, NOW, None) == 0
    monkeypatch.setenv("CREDITFLOW_WEBHOOK_RETENTION_DAYS", "7")
    assert run_purge(ctx, NOW, None) == 1
    assert _left(ctx) == [("evt_2", "delivered")]
    for bad in ("a week", "-1"):
        monkeypatch.setenv("CREDITFLOW_WEBHOOK_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match="CREDITFLOW_WEBHOOK_RETENTION_DAYS"):
            retention()


def test_the_purge_is_a_worker_job():
    assert "webhook_purge" in {job.name for job in JOBS}
