"""A Hypothesis state machine over the real credit service on SQLite.

Random sequences of grants (subscription, top-up and promo lots, with and without expiries),
spends (fractional, to the thousandth), refunds, holds, settles, releases, worker runs and
clock moves (across local midnights, in several time zones). A plain-Python model predicts
every lot's remaining credits, which spends succeed, and what each draws; after every step the
database must agree with the model, and `check_ledger` must find nothing wrong (conservation, no negative
balance, stored totals equal the entries).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from creditflow.credits.balance import get_balance
from creditflow.credits.check import check_ledger
from creditflow.credits.book import Book
from creditflow.credits.holds import hold_credits, release_hold, settle_hold
from creditflow.credits.jobs import expire_due
from creditflow.credits.models import CreditLot
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import refund_spend, spend_credits
from creditflow.kit.clock import FixedClock
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, Forbidden, InsufficientCredits

from .credit_kit import START, new_customer

DAILY = 100_000
EXAMPLES = int(os.environ.get("CREDITFLOW_STATEFUL_EXAMPLES", "25"))


@dataclass
class MLot:
    id: str
    kind: str
    remaining: int
    expires_at: datetime | None
    created_at: datetime

    def alive(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class MHold:
    id: str
    reference: str
    amount: int
    draws: list[tuple[str, int]]
    expires_at: datetime
    status: str = "held"


@dataclass
class Model:
    timezone: str
    now: datetime
    lots: dict[str, MLot] = field(default_factory=dict)
    free_days: set[str] = field(default_factory=set)
    spends: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # reference -> draws

    def today(self) -> tuple[str, datetime]:
        local = self.now.astimezone(ZoneInfo(self.timezone))
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), ZoneInfo(self.timezone))
        return local.date().isoformat(), midnight.astimezone(ZoneInfo("UTC"))

    def alive_lots(self) -> list[MLot]:
        # The spend order, written out independently: soonest expiry first, never last, then oldest, then id.
        lots = [lot for lot in self.lots.values() if lot.alive(self.now) and lot.remaining > 0]
        return sorted(lots, key=lambda l: (l.expires_at is None, l.expires_at or l.created_at, l.created_at, l.id))

    def available(self) -> int:
        virtual_free = 0 if self.today()[0] in self.free_days else DAILY
        return sum(lot.remaining for lot in self.alive_lots()) + virtual_free

    def draw(self, amount: int) -> list[tuple[str, int]]:
        draws, left = [], amount
        for lot in self.alive_lots():
            take = min(left, lot.remaining)
            lot.remaining -= take
            draws.append((lot.id, take))
            left -= take
            if not left:
                break
        assert left == 0
        return draws

    def give_back(self, draws: list[tuple[str, int]]) -> None:
        for lot_id, amount in draws:
            self.lots[lot_id].remaining += amount  # lost with the lot if it has expired

    def catch_up(self, holds: dict[str, MHold]) -> None:
        for hold in holds.values():
            if hold.status == "held" and hold.expires_at <= self.now:
                self.give_back(hold.draws)
                hold.status = "expired"


class LedgerMachine(RuleBasedStateMachine):
    ctx = None  # set by the test

    references = Bundle("references")
    held = Bundle("holds")

    def __init__(self):
        super().__init__()
        self.ctx.clock = FixedClock(START)
        self.holds: dict[str, MHold] = {}
        self.counter = 0

    @initialize(timezone=st.sampled_from(["UTC", "Asia/Kolkata", "America/New_York"]))
    def customer(self, timezone):
        self.cid = new_customer(self.ctx, timezone=timezone)
        self.model = Model(timezone, START)

    # -- helpers ------------------------------------------------------------------------------

    def _ref(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def _expect_free_lot(self) -> str | None:
        """The model's side of the daily free credits: the day's free lot is created by the first spend or hold."""
        day, ends_at = self.model.today()
        if day in self.model.free_days:
            return None
        return day

    def _learn_free_lot(self, day: str) -> None:
        key = f"free:{self.cid}:{day}"
        with self.ctx.db.transaction(readonly=True) as session:
            lot = session.scalar(select(CreditLot).where(CreditLot.grant_key == key))
        assert lot is not None, f"the free lot of {day} was not created"
        assert lot.expires_at == self.model.today()[1] and lot.created_at == self.model.now
        self.model.free_days.add(day)
        self.model.lots[lot.id] = MLot(lot.id, "free", DAILY, lot.expires_at, lot.created_at)

    def _drawn(self, draws) -> list[tuple[str, int]]:
        return [(d.lot_id, d.amount.milli) for d in draws]

    # -- rules --------------------------------------------------------------------------------

    @rule(kind=st.sampled_from(["subscription", "top_up", "promo"]),
          amount=st.integers(1, 300_000),
          expires_in=st.one_of(st.none(), st.integers(1, 4 * 24 * 60)))
    def grant(self, kind, amount, expires_in):
        expires_at = None if expires_in is None else self.model.now + timedelta(minutes=expires_in)
        if kind == "promo":
            lot_id = grant_promo_credits(self.ctx, self.cid, amount=Credits(amount), reason="model",
                                         expires_at=expires_at).id
        else:
            with self.ctx.db.transaction() as session:
                book = Book.lock(self.ctx, session, self.cid, now=self.model.now)
                lot_id = book.grant(kind, Credits(amount), expires_at=expires_at, grant_key=None)
                book.flush()
        self.model.lots[lot_id] = MLot(lot_id, kind, amount, expires_at, self.model.now)

    @rule(target=references, amount=st.integers(1, 150_000))
    def spend(self, amount):
        self.model.catch_up(self.holds)
        reference = self._ref("job")
        if amount > self.model.available():
            with pytest.raises(InsufficientCredits):
                spend_credits(self.ctx, self.cid, amount=Credits(amount), feature="standard_models",
                              reference=reference)
            return reference  # refused: refunding it must be NotFound
        day = self._expect_free_lot()
        result = spend_credits(self.ctx, self.cid, amount=Credits(amount), feature="standard_models",
                               reference=reference)
        if day:
            self._learn_free_lot(day)
        expected = self.model.draw(amount)
        assert self._drawn(result.draws) == expected
        assert result.balance.milli == self.model.available()
        self.model.spends[reference] = expected
        return reference

    @rule(reference=consumes(references))
    def refund(self, reference):
        self.model.catch_up(self.holds)
        if reference not in self.model.spends:
            with pytest.raises(Exception) as error:
                refund_spend(self.ctx, self.cid, reference=reference)
            assert error.value.code == "not_found"
            return
        refund_spend(self.ctx, self.cid, reference=reference)
        self.model.give_back(self.model.spends[reference])
        with pytest.raises(Conflict) as error:
            refund_spend(self.ctx, self.cid, reference=reference)
        assert error.value.code == "already_refunded"

    @rule(reference=references)
    def replay(self, reference):
        if reference not in self.model.spends:
            return
        amount = sum(a for _, a in self.model.spends[reference])
        result = spend_credits(self.ctx, self.cid, amount=Credits(amount), feature="standard_models",
                               reference=reference)
        assert result.replayed and self._drawn(result.draws) == self.model.spends[reference]

    @rule()
    def pro_feature_refused(self):
        with pytest.raises(Forbidden):
            spend_credits(self.ctx, self.cid, amount="1", feature="pro_models", reference=self._ref("pro"))

    @rule(target=held, amount=st.integers(1, 150_000), ttl=st.integers(60, 12 * 3600))
    def hold(self, amount, ttl):
        self.model.catch_up(self.holds)
        reference = self._ref("hold")
        if amount > self.model.available():
            with pytest.raises(InsufficientCredits):
                hold_credits(self.ctx, self.cid, amount=Credits(amount), feature="standard_models",
                             reference=reference, ttl_seconds=ttl)
            return "hold_refused"
        day = self._expect_free_lot()
        result = hold_credits(self.ctx, self.cid, amount=Credits(amount), feature="standard_models",
                              reference=reference, ttl_seconds=ttl)
        if day:
            self._learn_free_lot(day)
        expected = self.model.draw(amount)
        assert self._drawn(result.draws) == expected
        self.holds[result.id] = MHold(result.id, reference, amount, expected,
                                      self.model.now + timedelta(seconds=ttl))
        return result.id

    @rule(hold_id=consumes(held), share=st.integers(0, 1000))
    def settle(self, hold_id, share):
        self.model.catch_up(self.holds)
        hold = self.holds.get(hold_id)
        if hold is None:
            return
        amount = hold.amount * share // 1000
        if hold.status != "held":
            with pytest.raises(Conflict) as error:
                settle_hold(self.ctx, hold_id, amount=Credits(amount))
            assert error.value.code == f"hold_{hold.status}"
            return
        settle_hold(self.ctx, hold_id, amount=Credits(amount))
        hold.status = "settled"
        left, returned = amount, []
        for lot_id, drawn in hold.draws:
            take = min(left, drawn)
            left -= take
            if drawn - take:
                returned.append((lot_id, drawn - take))
        self.model.give_back(returned)

    @rule(hold_id=consumes(held))
    def release(self, hold_id):
        self.model.catch_up(self.holds)
        hold = self.holds.get(hold_id)
        if hold is None:
            return
        result = release_hold(self.ctx, hold_id)
        assert result.status == ("released" if hold.status == "held" else hold.status)
        if hold.status == "held":
            self.model.give_back(hold.draws)
            hold.status = "released"

    @rule(minutes=st.one_of(st.integers(1, 120), st.integers(120, 3 * 24 * 60)), run_worker=st.booleans())
    def move_clock(self, minutes, run_worker):
        self.model.now += timedelta(minutes=minutes)
        self.ctx.clock.set(self.model.now)
        self.model.catch_up(self.holds)
        if run_worker:
            expire_due(self.ctx, self.model.now)

    # -- after every step ---------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self):
        if not hasattr(self, "model"):
            return
        self.model.catch_up(self.holds)
        with self.ctx.db.transaction(readonly=True) as session:
            assert check_ledger(session) == []
        balance = self.ctx.db.read(lambda session: get_balance(self.ctx, session, self.cid))
        assert balance.available.milli == self.model.available()
        assert balance.held.milli == sum(h.amount for h in self.holds.values() if h.status == "held")
        expected = {lot.id: lot.remaining for lot in self.model.alive_lots()}
        # Today's free credits show before they are first used, whole, under the id they will have.
        unwritten = [lot for lot in balance.lots if lot.kind == "free" and lot.id not in expected]
        assert all(lot.remaining == lot.granted for lot in unwritten) and len(unwritten) <= 1
        assert {lot.id: lot.remaining.milli for lot in balance.lots if lot not in unwritten} == expected
        assert all(lot.remaining.milli >= 0 for lot in balance.lots)


def test_random_sequences_keep_the_ledger_sound(sqlite_ctx):
    LedgerMachine.ctx = sqlite_ctx
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
