"""Payments by tick: unknown outcomes are reconciled by the worker and never charged twice; an
attempt abandoned before the gateway call is settled only once it is stale."""

from __future__ import annotations

from datetime import timedelta

import pytest
from engine_kit import Engine, utc

from creditflow.kit.errors import PaymentFailed
from creditflow.payment.sandbox import SandboxGateway
from creditflow.payment.attempts import STALE_PENDING
from creditflow.purchase.subscribe import subscribe
from creditflow.worker.runner import tick

START = utc(2026, 3, 10, 10)
RENEWAL = utc(2026, 4, 10, 10)


class Crash(BaseException):
    """The worker process dies (not an error the engine could catch)."""


class DyingGateway(SandboxGateway):
    """The sandbox, except that the process dies as it is about to send a charge. The request
    is kept, so the test can let it "arrive" later, as a slow network would."""

    def __init__(self, db):
        super().__init__(db)
        self.sent = []

    def charge(self, request):
        self.sent.append(request)
        raise Crash


def test_first_purchase_with_unknown_outcome_is_started_by_tick(engine):
    cus = engine.customer("pm_card_timeout")
    with pytest.raises(PaymentFailed) as pending:
        subscribe(engine.ctx, cus, "standard", "monthly")
    assert pending.value.code == "payment_pending"
    assert [a.status for a in engine.attempts(cus)] == ["unknown"]
    assert engine.charged(cus) == [3000]

    tick(engine.ctx, START + timedelta(seconds=30))

    assert [a.status for a in engine.attempts(cus)] == ["succeeded"]
    assert engine.charged(cus) == [3000]
    [invoice] = engine.invoices(cus)
    assert (invoice.status, invoice.paid_at) == ("paid", START + timedelta(seconds=30))
    assert engine.event_count("subscription.created", cus) == 1
    [lot] = engine.lots(cus)
    assert lot.expires_at == RENEWAL
    tick(engine.ctx, START + timedelta(minutes=30))
    assert engine.charged(cus) == [3000]
    assert engine.event_count("subscription.created", cus) == 1


def test_renewal_with_unknown_outcome_is_reconciled_by_the_next_tick(engine):
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    from creditflow.purchase.payment_method import set_payment_method

    set_payment_method(engine.ctx, cus, "pm_card_timeout")

    tick(engine.ctx, RENEWAL)

    # Unknown: the sandbox took it, we don't know yet. No credits, still on the old term.
    assert [a.status for a in engine.attempts(cus)] == ["succeeded", "unknown"]
    assert engine.charged(cus) == [3000, 3000]
    assert engine.invoices(cus)[-1].status == "open"
    assert len(engine.lots(cus)) == 1
    assert engine.sub(sub.id).current_term_end == RENEWAL

    # Ticking again at the same instant reconciles; it never sends a second charge.
    tick(engine.ctx, RENEWAL)
    assert [a.status for a in engine.attempts(cus)] == ["succeeded", "succeeded"]
    assert engine.charged(cus) == [3000, 3000]
    renewed = engine.sub(sub.id)
    assert (renewed.status, renewed.current_term_end, renewed.due_at) == ("active", utc(2026, 5, 10, 10),
                                                                         utc(2026, 5, 10, 10))
    assert len(engine.lots(cus)) == 2
    for later in (RENEWAL + timedelta(minutes=6), RENEWAL + timedelta(hours=1), utc(2026, 5, 1)):
        tick(engine.ctx, later)
    assert engine.charged(cus) == [3000, 3000]
    assert len(engine.attempts(cus)) == 2
    assert engine.event_count("subscription.renewed", cus) == 1


def test_an_attempt_still_in_flight_is_not_settled_by_another_worker(db):
    """Worker A commits the attempt and is still waiting on the gateway when its five-minute
    lease runs out. Worker B must not decide "never charged" before the attempt is stale: A's
    charge may still land, and then dunning would charge the customer a second time."""
    engine = Engine(db, START)
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")

    dying = Engine(db, START)
    dying.ctx.gateway = DyingGateway(db)
    with pytest.raises(Crash):
        tick(dying.ctx, RENEWAL, owner="worker-a")
    [request] = dying.ctx.gateway.sent
    assert [a.status for a in engine.attempts(cus)] == ["succeeded", "pending"]

    # Past the lease, before the attempt is stale: worker B leaves it alone.
    tick(engine.ctx, RENEWAL + timedelta(minutes=6), owner="worker-b")
    assert [a.status for a in engine.attempts(cus)] == ["succeeded", "pending"]
    assert engine.sub(sub.id).status == "active"

    # A's request arrives at the gateway after all (a slow network), then B reconciles.
    SandboxGateway(db).charge(request)
    tick(engine.ctx, RENEWAL + STALE_PENDING, owner="worker-b")
    assert [a.status for a in engine.attempts(cus)] == ["succeeded", "succeeded"]
    assert engine.sub(sub.id).current_term_end == utc(2026, 5, 10, 10)

    tick(engine.ctx, RENEWAL + timedelta(days=8), owner="worker-b")
    assert engine.charged(cus) == [3000, 3000]


def test_an_attempt_abandoned_before_the_call_is_settled_once_stale_and_charged_once(db):
    engine = Engine(db, START)
    cus = engine.customer()
    sub = subscribe(engine.ctx, cus, "standard", "monthly")
    dying = Engine(db, START)
    dying.ctx.gateway = DyingGateway(db)
    with pytest.raises(Crash):
        tick(dying.ctx, RENEWAL, owner="worker-a")

    tick(engine.ctx, RENEWAL + STALE_PENDING, owner="worker-b")

    attempts = engine.attempts(cus)
    assert (attempts[1].status, attempts[1].failure_code) == ("failed", "not_charged")
    # The gateway never saw it: not the customer's decline, so no dunning; the same invoice is
    # charged again at once, with a new attempt, exactly once.
    assert [a.status for a in attempts] == ["succeeded", "failed", "succeeded"]
    assert attempts[2].invoice_id == attempts[1].invoice_id
    assert engine.charged(cus) == [3000, 3000]
    renewed = engine.sub(sub.id)
    assert (renewed.status, renewed.past_due_since, renewed.current_term_end) == ("active", None, utc(2026, 5, 10, 10))
    assert engine.invoices(cus)[-1].status == "paid"
    tick(engine.ctx, RENEWAL + timedelta(days=8))
    assert engine.charged(cus) == [3000, 3000]
