"""A Hypothesis state machine over auto top-up, on SQLite: random spends from the pool, runs of
the worker's job, and a card that starts declining.

A plain-Python model (written from the rule, not from the code: buy the bundle when the pool is
below the threshold, once per crossing, at most `monthly_max` times a month; a declined charge
turns it off) predicts every purchase; after every step the purchases and their events equal the
model's, the month's count never passes its maximum, and `check_ledger` finds nothing wrong.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from creditflow.credits.balance import get_balance
from creditflow.credits.check import check_ledger
from creditflow.credits.spend import spend_credits
from creditflow.events.models import Event
from creditflow.kit.clock import FixedClock
from creditflow.kit.credits import Credits
from creditflow.kit.errors import InsufficientCredits
from creditflow.purchase import auto_top_up
from creditflow.purchase.payment_method import set_payment_method
from creditflow.team import autotopup

from .credit_kit import START, new_customer, subscribed

EXAMPLES = int(os.environ.get("CREDITFLOW_STATEFUL_EXAMPLES", "20"))
BUNDLE = 1000  # credits_1000


class AutoTopUpMachine(RuleBasedStateMachine):
    ctx = None  # set by the test

    def __init__(self):
        super().__init__()
        self.ctx.clock = FixedClock(START)
        self.counter = 0

    @initialize(threshold=st.integers(min_value=99_700, max_value=100_000), monthly_max=st.integers(1, 3))
    def subscribed_with_auto_top_up(self, threshold, monthly_max):
        self.cid = new_customer(self.ctx)
        subscribed(self.ctx, self.cid, "creator")  # 100,000 credits a month, and the auto_top_up feature
        with self.ctx.db.transaction() as session:
            autotopup.set_auto_top_up(self.ctx, session, self.cid, enabled=True, threshold=str(threshold),
                                      bundle="credits_1000", monthly_max=monthly_max, plan="creator", now=START)
        self.threshold, self.monthly_max = threshold, monthly_max
        self.enabled, self.armed, self.purchases, self.failures, self.declining = True, True, 0, 0, False

    def _available(self) -> int:
        return self.ctx.db.read(lambda s: get_balance(self.ctx, s, self.cid)).available.milli // 1000

    def _events(self, kind: str) -> int:
        return self.ctx.db.read(lambda s: s.scalar(select(func.count()).select_from(Event).where(
            Event.customer_id == self.cid, Event.type == kind)))

    @rule(amount=st.integers(min_value=1, max_value=1_500))
    def spend(self, amount):
        self.counter += 1
        try:
            spend_credits(self.ctx, self.cid, amount=Credits.whole(amount), feature="standard_models",
                          reference=f"job-{self.counter}")
        except InsufficientCredits:
            pass

    @rule()
    def the_card_starts_declining(self):
        set_payment_method(self.ctx, self.cid, "pm_card_declined")
        self.declining = True

    @rule()
    def the_worker_runs_the_job(self):
        available = self._available()
        auto_top_up.run(self.ctx, self.ctx.clock.now())
        if not self.enabled:
            return
        if available >= self.threshold:
            self.armed = True
        elif not self.armed:
            event("below, but bought already for this crossing")
        elif self.purchases >= self.monthly_max:
            event("below, but the month's maximum is reached")
        if available < self.threshold and self.armed and self.purchases < self.monthly_max:
            if self.declining:
                event("a declined purchase turned it off")
                self.enabled, self.failures = False, self.failures + 1
            else:
                event("bought")
                self.purchases += 1
                self.armed = available + BUNDLE >= self.threshold
                assert self._available() == available + BUNDLE

    @invariant()
    def purchases_match_the_model(self):
        if not hasattr(self, "cid"):
            return
        assert self._events("auto_top_up.succeeded") == self.purchases <= self.monthly_max
        assert self._events("auto_top_up.failed") == self.failures
        with self.ctx.db.transaction(readonly=True) as session:
            settings_now = autotopup.get_auto_top_up(session, self.cid)
            assert settings_now.enabled is self.enabled
            assert settings_now.in_flight_since is None  # nothing left half-bought

    @invariant()
    def ledger_is_sound(self):
        with self.ctx.db.transaction(readonly=True) as session:
            assert check_ledger(session) == []


def test_random_spends_and_job_runs_buy_exactly_what_the_rule_says(sqlite_ctx):
    AutoTopUpMachine.ctx = sqlite_ctx
    run_state_machine_as_test(AutoTopUpMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
