"""The auto top-up job: buy a team's configured bundle when its pool has fallen below the threshold.

For each customer whose auto top-up is on, the worker compares the available credits with the
threshold. Below it, and armed (the pool was at or above it since the last purchase), and under
the monthly maximum, the worker claims the purchase with one conditional UPDATE (so several
workers buy once, and never two purchases at once for a pool), commits, and buys through the
ordinary top-up path (`purchase_top_up`, charged outside any transaction) with a reference named
by the claim: a claim taken up again after a crash buys nothing twice. A paid purchase counts
toward the month; a declined charge, or one that needs the cardholder's authentication (there is
no one to ask: it is off-session), turns auto top-up off with `auto_top_up.failed`.
"""

from __future__ import annotations

from datetime import datetime

from creditflow.context import Context
from creditflow.credits.balance import get_balance
from creditflow.kit.errors import CreditflowError
from creditflow.purchase.top_up import purchase_top_up
from creditflow.subscription.repository import live_subscription
from creditflow.team import autotopup
from creditflow.team.models import AutoTopUp


def run(ctx: Context, now: datetime, test_clock_id: str | None = None) -> int:
    """One pass of the job: returns how many purchases it made or tried."""
    with ctx.db.transaction(readonly=True) as session:
        customer_ids = autotopup.candidates(session, test_clock_id, now)
    done = 0
    for customer_id in customer_ids:
        done += _one(ctx, customer_id, now)
    return done


def _one(ctx: Context, customer_id: str, now: datetime) -> int:
    with ctx.db.transaction() as session:
        settings = session.get(AutoTopUp, customer_id)
        if settings is None or not settings.enabled:
            return 0
        sub = live_subscription(session, customer_id)
        period = sub.credit_period_start if sub is not None else None
        available = get_balance(ctx, session, customer_id).available
        if settings.in_flight_since is None and available >= settings.threshold:
            autotopup.rearm(session, customer_id, now)
            return 0
        plan = ctx.catalog.plans.get(sub.plan) if sub is not None and sub.status == "active" else None
        if period is None or plan is None or autotopup.FEATURE not in plan.features:
            return 0  # no active plan with the feature: nothing is bought (the setting stays)
        reference = autotopup.claim(session, settings, period=period, now=now)
        bundle = settings.bundle
    if reference is None:
        return 0
    try:
        top_up = purchase_top_up(ctx, customer_id, bundle=bundle, reference=reference)
    except CreditflowError as exc:
        if exc.code == "payment_pending":  # the gateway's answer is unknown: the claim is taken up again later
            return 1
        with ctx.db.transaction() as session:
            autotopup.failed(session, customer_id, reference=reference, code=exc.code, message=exc.message,
                             invoice_id=exc.extra.get("invoice"), now=now)
        return 1
    with ctx.db.transaction() as session:
        autotopup.succeeded(session, customer_id, reference=reference, period=period, bundle=bundle,
                            credits=top_up.credits,
                            invoice_id=top_up.invoice_id, available=get_balance(ctx, session, customer_id).available,
                            now=now)
    return 1
