"""The worker finishes refunds whose gateway answer was lost.

A refund is committed `pending` before the gateway is called (SPEC P3). If the answer never
arrives (a timeout, a crash in between), the refund stays pending and blocks further refunds of
its invoice. This job asks the gateway again, with the refund's id as the same idempotency key,
so the money goes out once whatever happened the first time, and records the outcome, taking
back what the first request said to (`Refund.takes_back`).

A refund is left alone for its first `GRACE` so the request that created it can finish first;
if both do meet, the gateway deduplicates the call and `settle_refund` records it once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from creditflow.customer.models import Customer
from creditflow.kit.errors import CreditflowError
from creditflow.refund.models import Refund
from creditflow.refund.service import retry_refund
from creditflow.worker.jobs import register_job

log = logging.getLogger("creditflow.refunds")

GRACE = timedelta(minutes=2)
BATCH = 50


def pending_refunds(session, test_clock_id: str | None, now: datetime, *, limit: int = BATCH) -> list[str]:
    """Pending refunds older than GRACE, of customers on this test clock (or on real time)."""
    clock = Customer.test_clock_id.is_(None) if test_clock_id is None else Customer.test_clock_id == test_clock_id
    return list(session.scalars(
        select(Refund.id).join(Customer, Customer.id == Refund.customer_id)
        .where(Refund.status == "pending", Refund.created_at <= now - GRACE, clock)
        .order_by(Refund.created_at, Refund.id).limit(limit)
    ))


def run(ctx, now: datetime, test_clock_id: str | None) -> int:
    with ctx.db.transaction(readonly=True) as session:
        refund_ids = pending_refunds(session, test_clock_id, now)
    finished = 0
    for refund_id in refund_ids:
        try:
            if retry_refund(ctx, refund_id).status != "pending":
                finished += 1
        except CreditflowError as exc:  # still no answer: the next tick asks again
            log.warning("refund %s is still pending: %s", refund_id, exc)
    return finished


register_job("refund_retry", run)
