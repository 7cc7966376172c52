"""Three worker PROCESSES race over the same 200 due subscriptions: every renewal is charged,
invoiced and granted exactly once, every monthly grant made once, every decline dunned once.

PostgreSQL is the case that matters (FOR UPDATE SKIP LOCKED); SQLite runs it too."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from engine_kit import utc
from sqlalchemy import func, select

from creditflow.credits.models import CreditLot
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice
from creditflow.payment.models import PaymentAttempt, SandboxCharge
from creditflow.subscription.models import Subscription
from creditflow.purchase.subscribe import subscribe
from creditflow.worker.runner import tick

WORKER = Path(__file__).with_name("race_worker.py")
START = utc(2026, 3, 10, 10)
RENEWAL = utc(2026, 4, 10, 10)
MIX = {"monthly": 140, "quarterly": 30, "declined": 20, "timeout": 10}


def _seed(engine) -> dict[str, list[str]]:
    """200 subscriptions bought at the same instant: all due at RENEWAL."""
    groups: dict[str, list[str]] = {}
    for kind, n in MIX.items():
        token = {"declined": "pm_card_ok_then_declined"}.get(kind, "pm_card_ok")
        term = "quarterly" if kind == "quarterly" else "monthly"
        for _ in range(n):
            cus = engine.customer(token)
            subscribe(engine.ctx, cus, "standard", term)
            groups.setdefault(kind, []).append(cus)
    # Their cards time out from now on: the renewal's outcome will be unknown.
    from creditflow.purchase.payment_method import set_payment_method

    for cus in groups["timeout"]:
        set_payment_method(engine.ctx, cus, "pm_card_timeout")
    return groups


def _race(url: str, workers: int, batch: int) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, str(WORKER), url, RENEWAL.isoformat(), f"proc-{n}", str(batch)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(workers)]
    try:
        for proc in procs:  # a start line: every process imported and connected
            line = proc.stdout.readline().strip()
            assert line == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def _per_customer(session, query) -> Counter:
    return Counter(dict(session.execute(query).all()))


def test_three_worker_processes_charge_and_grant_each_renewal_exactly_once(engine):
    groups = _seed(engine)
    assert engine.count(Subscription) == 200

    results = _race(engine.db.url, workers=3, batch=5)

    # It was a race: the work was shared.
    assert sum(r["steps"] for r in results) >= 200
    assert sum(1 for r in results if r["steps"] > 0) >= 2, results

    # The timed-out renewals are reconciled by the next tick, without charging again.
    tick(engine.ctx, RENEWAL + timedelta(seconds=1))

    with engine.db.transaction(readonly=True) as session:
        charges = _per_customer(session, select(SandboxCharge.customer_ref, func.count())
                                .where(SandboxCharge.status == "succeeded").group_by(SandboxCharge.customer_ref))
        sent = _per_customer(session, select(SandboxCharge.customer_ref, func.count())
                             .group_by(SandboxCharge.customer_ref))
        renewals = _per_customer(session, select(Invoice.subscription_id, func.count())
                                 .where(Invoice.purpose == "renewal").group_by(Invoice.subscription_id))
        renewal_keys = list(session.scalars(select(Invoice.period_start).where(Invoice.purpose == "renewal")))
        lots = _per_customer(session, select(CreditLot.customer_id, func.count())
                             .where(CreditLot.kind == "subscription").group_by(CreditLot.customer_id))
        attempts = _per_customer(session, select(PaymentAttempt.customer_id, func.count())
                                 .group_by(PaymentAttempt.customer_id))
        events = Counter(dict(session.execute(select(Event.type, func.count()).group_by(Event.type)).all()))
        subs = {s.customer_id: s for s in session.scalars(select(Subscription))}
        leased = session.scalar(select(func.count()).select_from(Subscription)
                                .where(Subscription.lease_owner.is_not(None)))

    renewing = groups["monthly"] + groups["timeout"]
    for cus in renewing:
        assert (charges[cus], sent[cus], attempts[cus], lots[cus]) == (2, 2, 2, 2), cus
        sub = subs[cus]
        assert (sub.status, sub.current_term_start, sub.current_term_end) == (
            "active", RENEWAL, utc(2026, 5, 10, 10)), cus
        assert renewals[sub.id] == 1
    for cus in groups["quarterly"]:
        assert (charges[cus], attempts[cus], lots[cus]) == (1, 1, 2), cus
        assert subs[cus].credit_period_start == RENEWAL
        assert renewals[subs[cus].id] == 0
    for cus in groups["declined"]:
        assert (charges[cus], sent[cus], attempts[cus], lots[cus]) == (1, 2, 2, 1), cus
        assert (subs[cus].status, subs[cus].retry_count) == ("past_due", 0)
        assert renewals[subs[cus].id] == 1
    assert set(renewal_keys) == {RENEWAL}
    assert events["subscription.renewed"] == len(renewing)
    assert events["subscription.past_due"] == len(groups["declined"])
    assert events["invoice.payment_failed"] == len(groups["declined"])
    # 200 first grants, one monthly grant or renewal grant each for the 180 that succeeded.
    assert events["credits.granted"] >= 200 + 180
    assert sum(lots.values()) == 200 + 180
    assert leased == 0
