"""A Hypothesis state machine over a team's shared pool, on SQLite.

Random sequences of members' spends, holds (settled for part, released, or left to expire),
refunds, limit changes, suspensions, top-ups of the pool and clock moves across the team's
monthly boundaries. A plain-Python model keeps each member's usage this month (written from the
rule, not from the code under test: boundaries are anchor + k months, computed here with
dateutil) and predicts which spends a limit refuses; after every step each member's usage in the
database equals the model's, and `check_ledger` finds nothing wrong.
"""

from __future__ import annotations

import os
from datetime import timedelta

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from creditflow.credits.balance import get_balance
from creditflow.credits.check import check_ledger
from creditflow.credits.holds import hold_credits, release_hold, settle_hold
from creditflow.credits.jobs import expire_due
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import refund_spend, spend_credits
from creditflow.kit.clock import FixedClock
from creditflow.kit.credits import Credits
from creditflow.kit.errors import CreditflowError, Forbidden, InsufficientCredits
from creditflow.team import service as team

from .credit_kit import START, new_customer

EXAMPLES = int(os.environ.get("CREDITFLOW_STATEFUL_EXAMPLES", "25"))
amounts = st.integers(min_value=1, max_value=40_000).map(Credits)  # thousandths: up to 40 credits


class TeamMachine(RuleBasedStateMachine):
    ctx = None  # set by the test

    def __init__(self):
        super().__init__()
        self.ctx.clock = FixedClock(START)
        self.counter = 0
        self.used: dict[str, int] = {}  # member -> thousandths this month (the model)
        self.limits: dict[str, int | None] = {}
        self.active: dict[str, bool] = {}
        self.spends: dict[str, tuple[str, int, int]] = {}  # reference -> (member, counted, month index)
        self.holds: dict[str, tuple[str, str, int, int]] = {}  # hold id -> (reference, member, amount, month)

    @initialize(members=st.integers(min_value=1, max_value=4))
    def team_of(self, members):
        self.cid = new_customer(self.ctx)
        order = []  # the owner, then the members as invited (ids are random: never sorted, for replays)
        with self.ctx.db.transaction() as session:
            for n in range(members):
                invited, _token = team.invite_member(self.ctx, session, self.cid, email=f"m{n}@example.com",
                                                     plan="creator", anchor=None, now=START)
                team.accept_invitation(self.ctx, session, invited.id, external_id=f"{self.cid}-{n}", plan="creator",
                                       now=START)
                order.append(invited.id)
            owner = next(m.id for m in team.list_members(session, self.cid, START) if m.role == "owner")
            self.anchor = team.get_team(session, self.cid).anchor
        self.order = [owner, *order]
        for member in self.order:
            self.used[member], self.limits[member], self.active[member] = 0, None, True
        grant_promo_credits(self.ctx, self.cid, amount=Credits.whole(300), reason="pool", expires_at=None,
                            kind="promo", actor="test", reference=self._ref("pool"))

    # -- the model's month ---------------------------------------------------------------------

    def month(self) -> int:
        now, k = self.ctx.clock.now(), 0
        while self.anchor + relativedelta(months=k + 1) <= now:
            k += 1
        return k

    def _ref(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def _available(self) -> int:
        return self.ctx.db.read(lambda s: get_balance(self.ctx, s, self.cid)).available.milli

    def _roll(self) -> None:
        """Usage counts from the current month: what an earlier month counted is gone."""
        month = self.month()
        if getattr(self, "_month", None) != month:
            self._month = month
            self.used = dict.fromkeys(self.used, 0)

    # -- rules ---------------------------------------------------------------------------------

    @rule(index=st.integers(min_value=0, max_value=4), amount=amounts)
    def spend(self, index, amount):
        self._roll()
        member = self.order[index % len(self.order)]
        limit, used, pool = self.limits[member], self.used[member], self._available()
        reference = self._ref("spend")
        try:
            spend_credits(self.ctx, self.cid, amount=amount, feature="standard_models", reference=reference,
                          member=member)
        except Forbidden as exc:
            assert exc.code == "member_inactive" and not self.active[member]
            return
        except InsufficientCredits as exc:
            if exc.code == "member_limit_reached":
                assert limit is not None and used + amount.milli > limit
            else:
                assert exc.code == "insufficient_credits" and pool < amount.milli
                assert limit is None or used + amount.milli <= limit
            return
        assert self.active[member] and (limit is None or used + amount.milli <= limit)
        self.used[member] += amount.milli
        self.spends[reference] = (member, amount.milli, self.month())

    @precondition(lambda self: self.spends)
    @rule(pick=st.integers(min_value=0))
    def refund(self, pick):
        self._roll()
        reference = list(self.spends)[pick % len(self.spends)]
        member, counted, month = self.spends.pop(reference)
        refund_spend(self.ctx, self.cid, reference=reference)
        if month == self.month():
            self.used[member] -= counted

    @rule(index=st.integers(min_value=0, max_value=4), amount=amounts, ttl=st.integers(min_value=60, max_value=86_400))
    def hold(self, index, amount, ttl):
        self._roll()
        member = self.order[index % len(self.order)]
        limit, used = self.limits[member], self.used[member]
        reference = self._ref("hold")
        try:
            placed = hold_credits(self.ctx, self.cid, amount=amount, feature="standard_models", reference=reference,
                                  ttl_seconds=ttl, member=member)
        except CreditflowError as exc:
            if exc.code == "member_limit_reached":
                assert limit is not None and used + amount.milli > limit
            return
        assert limit is None or used + amount.milli <= limit
        self.used[member] += amount.milli
        self.holds[placed.id] = (reference, member, amount.milli, self.month())

    @precondition(lambda self: self.holds)
    @rule(pick=st.integers(min_value=0), share=st.sampled_from([None, 0, 1, 2]))
    def resolve(self, pick, share):
        """Settle for none, a third, or all of it, or release (None)."""
        self._roll()
        hold_id = list(self.holds)[pick % len(self.holds)]
        reference, member, amount, month = self.holds.pop(hold_id)
        expired = self.ctx.clock.now() >= self._expiry(hold_id)
        try:
            if share is None:
                release_hold(self.ctx, hold_id)
                back = amount
            else:
                settled = {0: 0, 1: amount // 3, 2: amount}[share]
                settle_hold(self.ctx, hold_id, amount=Credits(settled))
                back = amount - settled
                if settled:
                    self.spends[reference] = (member, settled, month)
        except CreditflowError as exc:
            assert exc.code == "hold_expired" and expired
            back = 0  # given back when it expired (`advance` did it in the model)
        if month == self.month() and not expired:
            self.used[member] -= back

    def _expiry(self, hold_id: str):
        from creditflow.credits.holds import get_hold
        return self.ctx.db.read(lambda s: get_hold(self.ctx, s, hold_id)).expires_at

    @rule(index=st.integers(min_value=0, max_value=4), limit=st.one_of(st.none(), st.integers(0, 60_000)))
    def set_limit(self, index, limit):
        member = self.order[index % len(self.order)]
        with self.ctx.db.transaction() as session:
            team.update_member(self.ctx, session, member, monthly_limit=None if limit is None else Credits(limit),
                               plan="creator", now=self.ctx.clock.now())
        self.limits[member] = limit

    @rule(index=st.integers(min_value=1, max_value=4), on=st.booleans())
    def suspend(self, index, on):
        member = self.order[index % len(self.order)]
        if member == self.order[0]:  # the owner's status doesn't change
            return
        with self.ctx.db.transaction() as session:
            team.update_member(self.ctx, session, member, status="suspended" if on else "active", plan="creator",
                               now=self.ctx.clock.now())
        self.active[member] = not on

    @rule(days=st.integers(min_value=0, max_value=20), hours=st.integers(min_value=0, max_value=23))
    def advance(self, days, hours):
        before = self.month()
        self.ctx.clock = FixedClock(self.ctx.clock.now() + timedelta(days=days, hours=hours))
        now = self.ctx.clock.now()
        for hold_id in list(self.holds):  # the worker releases holds past their expiry
            reference, member, amount, month = self.holds[hold_id]
            if self._expiry(hold_id) <= now:
                del self.holds[hold_id]
                if month == before and before == self.month():
                    self.used[member] -= amount
        expire_due(self.ctx, now)
        self._roll()

    # -- what must hold after every step ------------------------------------------------------

    @invariant()
    def usage_matches_the_model(self):
        if not self.used:
            return
        self._roll()
        now = self.ctx.clock.now()
        with self.ctx.db.transaction(readonly=True) as session:
            found = team.get_team(session, self.cid)
            actual = {m.id: team.used_this_month(found, m, now).milli for m in team.list_members(session, self.cid, now)}
        assert actual == self.used

    @invariant()
    def ledger_is_sound(self):
        with self.ctx.db.transaction(readonly=True) as session:
            assert check_ledger(session) == []


def test_random_team_sequences_keep_usage_exact_and_the_ledger_sound(sqlite_ctx):
    TeamMachine.ctx = sqlite_ctx
    run_state_machine_as_test(TeamMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
