"""Holds: reserve, settle at most the reserved amount, release, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from creditflow.credits.balance import get_balance
from creditflow.credits.holds import get_hold, hold_credits, release_hold, settle_hold
from creditflow.credits.jobs import expire_due
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import refund_spend, spend_credits
from creditflow.kit.errors import Conflict, Forbidden, InsufficientCredits, InvalidRequest, NotFound

from .credit_kit import START, assert_ledger_clean, c, new_customer, snapshot


def hold(ctx, cid, amount, reference="render-1", ttl=600, feature="standard_models"):
    return hold_credits(ctx, cid, amount=amount, feature=feature, reference=reference, ttl_seconds=ttl)


def test_held_credits_cannot_be_spent_elsewhere(ctx):
    cid = new_customer(ctx)
    h = hold(ctx, cid, "80")
    assert (h.status, h.amount, h.balance) == ("held", c(80), c(20))
    assert h.id.startswith("hold_") and h.expires_at == START + timedelta(seconds=600)
    balance = ctx.db.read(lambda session: get_balance(ctx, session, cid))
    assert (balance.available, balance.held) == (c(20), c(80))
    with pytest.raises(InsufficientCredits):
        spend_credits(ctx, cid, amount="20.001", feature="standard_models", reference="other")
    spend_credits(ctx, cid, amount="20", feature="standard_models", reference="other")
    assert_ledger_clean(ctx.db)


def test_settle_spends_the_actual_amount_and_returns_the_rest(ctx):
    cid = new_customer(ctx)
    promo = grant_promo_credits(ctx, cid, amount="100", reason="x")
    h = hold(ctx, cid, "150")  # free 100 + promo 50

    settled = settle_hold(ctx, h.id, amount="120.5")

    assert (settled.status, settled.settled) == ("settled", c("120.5"))
    balance = ctx.db.read(lambda session: get_balance(ctx, session, cid))
    assert (balance.available, balance.held) == (c("79.5"), c(0))
    # The soonest-expiring part is spent: all the free credits, 20.5 of the promo.
    assert balance.by_kind == {"free": c(0), "promo": c("79.5"), "subscription": c(0), "top_up": c(0)}
    assert settle_hold(ctx, h.id, amount="120.5").replayed  # a retried settle
    with pytest.raises(Conflict) as error:
        settle_hold(ctx, h.id, amount="1")
    assert error.value.code == "hold_settled"
    with pytest.raises(Conflict) as error:
        release_hold(ctx, h.id)
    assert error.value.code == "hold_settled"
    # A settled hold is refunded like a spend, by its reference.
    refund = refund_spend(ctx, cid, reference="render-1")
    assert refund.amount == c("120.5")
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(200)
    assert promo.id in {d.lot_id for d in refund.returned}
    assert_ledger_clean(ctx.db)


def test_settle_more_than_held_is_refused(ctx):
    cid = new_customer(ctx)
    h = hold(ctx, cid, "10")
    before = snapshot(ctx.db, cid)
    with pytest.raises(InvalidRequest) as error:
        settle_hold(ctx, h.id, amount="10.001")
    assert error.value.param == "amount"
    with pytest.raises(InvalidRequest):
        settle_hold(ctx, h.id, amount="-1")
    assert snapshot(ctx.db, cid) == before
    assert settle_hold(ctx, h.id, amount="0").settled == c(0)
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(100)


def test_release_gives_everything_back(ctx):
    cid = new_customer(ctx)
    h = hold(ctx, cid, "30")
    released = release_hold(ctx, h.id)
    assert released.status == "released" and released.resolved_at == START
    assert release_hold(ctx, h.id).status == "released"  # idempotent
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(100)
    with pytest.raises(Conflict) as error:
        settle_hold(ctx, h.id, amount="1")
    assert error.value.code == "hold_released"
    with pytest.raises(Conflict) as error:
        refund_spend(ctx, cid, reference="render-1")
    assert error.value.code == "hold_not_settled"
    assert_ledger_clean(ctx.db)


def test_an_expired_hold_is_released_by_the_worker(ctx):
    cid = new_customer(ctx)
    h = hold(ctx, cid, "30", ttl=60)
    ctx.clock.set(START + timedelta(seconds=60))
    # Before the worker runs, the balance already counts the credits as back.
    assert ctx.db.read(lambda session: get_hold(ctx, session, h.id)).status == "expired"
    balance = ctx.db.read(lambda session: get_balance(ctx, session, cid))
    assert (balance.available, balance.held) == (c(100), c(0))

    assert expire_due(ctx, ctx.clock.now()) == 1
    assert expire_due(ctx, ctx.clock.now()) == 0

    expired = ctx.db.read(lambda session: get_hold(ctx, session, h.id))
    assert (expired.status, expired.resolved_at) == ("expired", START + timedelta(seconds=60))
    with pytest.raises(Conflict) as error:
        settle_hold(ctx, h.id, amount="1")
    assert error.value.code == "hold_expired"
    assert release_hold(ctx, h.id).status == "expired"
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(100)
    assert_ledger_clean(ctx.db)


def test_an_expired_hold_is_released_by_the_next_spend_if_the_worker_is_late(ctx):
    cid = new_customer(ctx)
    h = hold(ctx, cid, "90", ttl=60)
    ctx.clock.set(START + timedelta(minutes=5))
    spend_credits(ctx, cid, amount="95", feature="standard_models", reference="next")
    assert ctx.db.read(lambda session: get_hold(ctx, session, h.id)).status == "expired"
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(5)
    assert_ledger_clean(ctx.db)


def test_an_expired_hold_on_a_lot_that_expired_too_is_lost_with_the_lot(ctx):
    cid = new_customer(ctx)
    ctx.clock.set(START.replace(hour=23, minute=50))
    h = hold(ctx, cid, "40", ttl=3600)  # from today's free lot, which ends at midnight
    ctx.clock.set(START.replace(hour=23, minute=50) + timedelta(hours=2))
    expire_due(ctx, ctx.clock.now())
    assert ctx.db.read(lambda session: get_hold(ctx, session, h.id)).status == "expired"
    balance = ctx.db.read(lambda session: get_balance(ctx, session, cid))
    assert (balance.available, balance.held) == (c(100), c(0))  # the new day's free credits only
    assert_ledger_clean(ctx.db)


def test_holds_are_idempotent_by_reference(ctx):
    cid = new_customer(ctx)
    first = hold(ctx, cid, "30")
    again = hold(ctx, cid, "30")
    assert again.replayed and again.id == first.id
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).held == c(30)
    with pytest.raises(Conflict) as error:
        hold(ctx, cid, "31")
    assert error.value.code == "reference_reused"
    with pytest.raises(Conflict) as error:  # a spend can't take a hold's reference
        spend_credits(ctx, cid, amount="30", feature="standard_models", reference="render-1")
    assert error.value.code == "reference_reused"


@pytest.mark.parametrize("change, error_type, code, param", [
    (dict(amount="0"), InvalidRequest, "invalid_request", "amount"),
    (dict(amount="1.2345"), InvalidRequest, "invalid_request", "amount"),
    (dict(ttl=0), InvalidRequest, "invalid_request", "ttl_seconds"),
    (dict(ttl="60"), InvalidRequest, "invalid_request", "ttl_seconds"),
    (dict(feature="nope"), InvalidRequest, "unknown_feature", "feature"),
    (dict(feature="pro_models"), Forbidden, "subscription_required", "feature"),
    (dict(amount="100.5"), InsufficientCredits, "insufficient_credits", "amount"),
])
def test_bad_holds_change_nothing(ctx, change, error_type, code, param):
    cid = new_customer(ctx)
    before = snapshot(ctx.db, cid)
    args = dict(amount="10", feature="standard_models", reference="r", ttl=60) | change
    with pytest.raises(error_type) as error:
        hold(ctx, cid, args["amount"], args["reference"], args["ttl"], args["feature"])
    assert (error.value.code, error.value.param) == (code, param)
    assert snapshot(ctx.db, cid) == before


def test_unknown_hold(ctx):
    for call in (lambda: settle_hold(ctx, "hold_nope", amount="1"), lambda: release_hold(ctx, "hold_nope"),
                 lambda: ctx.db.read(lambda session: get_hold(ctx, session, "hold_nope"))):
        with pytest.raises(NotFound) as error:
            call()
        assert error.value.param == "hold"
