"""The pure allocation of a spend over lots (soonest-expiring first) and the split of a settled hold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from creditflow.credits.ledger import Draw, Lot, allocate, draws_from_json, draws_to_json, spend_order, split_settlement
from creditflow.kit.credits import Credits
from creditflow.kit.errors import InsufficientCredits

T0 = datetime(2026, 3, 10, tzinfo=timezone.utc)


def lot(id, kind, remaining, expires_in_days=None, created_days_ago=0):
    expires = None if expires_in_days is None else T0 + timedelta(days=expires_in_days)
    return Lot(id, kind, Credits.parse(str(remaining)), expires, T0 - timedelta(days=created_days_ago))


def drawn(draws):
    return [(d.lot_id, str(d.amount)) for d in draws]


@pytest.mark.parametrize("lots, amount, expected", [
    # The example: free 30, subscription 20, top-up 1000; 80 leaves 0, 0, 970.
    ([lot("top", "top_up", 1000), lot("sub", "subscription", 20, 20), lot("free", "free", 30, 0.5)],
     "80", [("free", "30"), ("sub", "20"), ("top", "30")]),
    # Fractions are exact.
    ([lot("a", "top_up", 1000)], "73.5", [("a", "73.5")]),
    ([lot("a", "promo", "0.001", 1), lot("b", "top_up", 5)], "0.002", [("a", "0.001"), ("b", "0.001")]),
    # Soonest-expiring first whatever the kind; never-expiring last.
    ([lot("promo", "promo", 10, 2), lot("sub", "subscription", 10, 30), lot("top", "top_up", 10)],
     "15", [("promo", "10"), ("sub", "5")]),
    # Among lots expiring together (or never), the oldest first.
    ([lot("new", "top_up", 10, created_days_ago=1), lot("old", "top_up", 10, created_days_ago=5)],
     "12", [("old", "10"), ("new", "2")]),
    ([lot("b", "promo", 10, 3, created_days_ago=1), lot("a", "promo", 10, 3, created_days_ago=2)],
     "10", [("a", "10")]),
    # Exactly everything.
    ([lot("a", "free", 1, 1), lot("b", "top_up", 2)], "3", [("a", "1"), ("b", "2")]),
    # Empty lots are skipped.
    ([lot("empty", "free", 0, 1), lot("b", "top_up", 2)], "1", [("b", "1")]),
])
def test_allocate_table(lots, amount, expected):
    assert drawn(allocate(lots, Credits.parse(amount))) == expected


def test_allocate_refuses_a_short_balance():
    with pytest.raises(InsufficientCredits) as error:
        allocate([lot("sub", "subscription", 10, 1), lot("top", "top_up", 5)], Credits.parse("25"))
    assert error.value.code == "insufficient_credits"


def test_allocate_refuses_nothing_to_draw():
    with pytest.raises(InsufficientCredits):
        allocate([], Credits.parse("0.001"))
    with pytest.raises(ValueError):
        allocate([lot("a", "top_up", 5)], Credits(0))


def test_spend_order_puts_never_expiring_last():
    lots = [lot("never", "top_up", 1), lot("later", "promo", 1, 100), lot("soon", "free", 1, 0.1)]
    assert [x.id for x in sorted(lots, key=spend_order)] == ["soon", "later", "never"]


def test_draws_round_trip_through_json():
    draws = [Draw("lot_a", "free", Credits(1)), Draw("lot_b", "top_up", Credits(73500))]
    assert draws_from_json(draws_to_json(draws)) == draws


# --- properties ------------------------------------------------------------------------------

milli = st.integers(min_value=0, max_value=5_000_000)
lots_strategy = st.lists(
    st.builds(
        Lot,
        id=st.uuids().map(str),
        kind=st.sampled_from(["free", "subscription", "top_up", "promo"]),
        remaining=milli.map(Credits),
        expires_at=st.one_of(st.none(), st.integers(0, 10_000).map(lambda m: T0 + timedelta(minutes=m))),
        created_at=st.integers(0, 10_000).map(lambda m: T0 - timedelta(minutes=m)),
    ),
    max_size=8, unique_by=lambda x: x.id,
)


@given(lots_strategy, st.integers(min_value=1, max_value=20_000_000))
def test_a_spend_never_draws_more_than_the_lots_hold(lots, amount):
    total = sum(x.remaining.milli for x in lots)
    if amount > total:
        with pytest.raises(InsufficientCredits):
            allocate(lots, Credits(amount))
        return
    draws = allocate(lots, Credits(amount))
    by_id = {x.id: x for x in lots}
    assert sum(d.amount.milli for d in draws) == amount
    assert len({d.lot_id for d in draws}) == len(draws)
    for d in draws:
        assert 0 < d.amount.milli <= by_id[d.lot_id].remaining.milli
        assert d.kind == by_id[d.lot_id].kind
    # In spend order, every lot before the last one drawn is drawn completely, and no lot after
    # it is touched: the soonest-expiring credits always go first.
    ordered = [x for x in sorted(lots, key=spend_order) if x.remaining.milli > 0]
    assert [d.lot_id for d in draws] == [x.id for x in ordered[:len(draws)]]
    for d in draws[:-1]:
        assert d.amount == by_id[d.lot_id].remaining


@given(lots_strategy.filter(lambda lots: any(x.remaining.milli for x in lots)), st.data())
def test_settling_splits_a_hold_lot_by_lot(lots, data):
    total = sum(x.remaining.milli for x in lots)
    draws = allocate(lots, Credits(data.draw(st.integers(1, total))))
    held = sum(d.amount.milli for d in draws)
    settle = data.draw(st.integers(0, held))
    spent, returned = split_settlement(draws, Credits(settle))
    assert sum(d.amount.milli for d in spent) == settle
    assert sum(d.amount.milli for d in returned) == held - settle
    per_lot = {}
    for d in spent + returned:
        per_lot[d.lot_id] = per_lot.get(d.lot_id, 0) + d.amount.milli
    assert per_lot == {d.lot_id: d.amount.milli for d in draws}
    # What is spent is the soonest-expiring part of the hold.
    assert [d.lot_id for d in spent] == [d.lot_id for d in draws[:len(spent)]]


def test_settling_more_than_held_is_refused():
    with pytest.raises(ValueError):
        split_settlement([Draw("a", "free", Credits(5))], Credits(6))
