"""Spending (atomic, soonest-expiring first, idempotent by reference) and refunding through
the service, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from creditflow.credits.balance import get_balance, list_entries
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import get_spend, refund_spend, spend_credits
from creditflow.kit.errors import Conflict, Forbidden, InsufficientCredits, InvalidRequest, NotFound

from .credit_kit import START, assert_ledger_clean, c, entries_of, lot_remaining, new_customer, snapshot, subscribed


def spend(ctx, customer_id, amount, feature="standard_models", reference=None):
    return spend_credits(ctx, customer_id, amount=amount, feature=feature,
                         reference=reference or f"job-{amount}-{feature}-{id(object())}")


def test_a_spend_draws_lots_and_reports_the_balance(ctx):
    cid = new_customer(ctx)
    promo = grant_promo_credits(ctx, cid, amount="50", reason="welcome", expires_at=START + timedelta(days=5))

    result = spend_credits(ctx, cid, amount="120.25", feature="standard_models", reference="job-1")

    # Free (expires tonight) first, then the promo (in 5 days).
    assert [(d.kind, d.amount) for d in result.draws] == [("free", c(100)), ("promo", c("20.25"))]
    assert result.balance == c("29.75") and result.status == "spent" and not result.replayed
    assert lot_remaining(ctx.db, promo.id) == c("29.75")
    balance = ctx.db.read(lambda session: get_balance(ctx, session, cid))
    assert balance.available == c("29.75")
    assert balance.by_kind["free"] == c(0) and balance.by_kind["promo"] == c("29.75")
    assert [(e.kind, e.amount) for e in ctx.db.read(lambda session: list_entries(session, cid)).data] == [
        ("grant", c(50)), ("grant", c(100)), ("spend", c(100)), ("spend", c("20.25"))]
    assert_ledger_clean(ctx.db)


def test_four_spends_of_73_5_from_1000_leave_exactly_706(ctx):
    cid = new_customer(ctx)
    subscribed(ctx, cid)
    spend(ctx, cid, "1000", "pro_models")  # the plan's 2000 down to 1000
    for i in range(4):
        spend_credits(ctx, cid, amount=73.5, feature="pro_models", reference=f"gen-{i}")
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["subscription"] == c(706)
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(706)
    assert_ledger_clean(ctx.db)


def test_the_same_reference_returns_the_first_result_and_spends_nothing_more(ctx):
    cid = new_customer(ctx)
    first = spend_credits(ctx, cid, amount="10", feature="standard_models", reference="job-1")
    before = snapshot(ctx.db, cid)

    again = spend_credits(ctx, cid, amount="10", feature="standard_models", reference="job-1")

    assert again.replayed and (again.id, again.draws, again.balance) == (first.id, first.draws, first.balance)
    assert snapshot(ctx.db, cid) == before
    assert ctx.db.read(lambda session: get_spend(session, cid, "job-1")).amount == c(10)
    # References are per customer: another customer may use the same one.
    other = new_customer(ctx)
    assert not spend_credits(ctx, other, amount="10", feature="standard_models", reference="job-1").replayed


@pytest.mark.parametrize("amount, feature", [("11", "standard_models"), ("10", "pro_models")])
def test_the_same_reference_for_something_else_is_refused(ctx, amount, feature):
    cid = new_customer(ctx)
    subscribed(ctx, cid)
    spend_credits(ctx, cid, amount="10", feature="standard_models", reference="job-1")
    before = snapshot(ctx.db, cid)
    with pytest.raises(Conflict) as error:
        spend_credits(ctx, cid, amount=amount, feature=feature, reference="job-1")
    assert (error.value.code, error.value.param) == ("reference_reused", "reference")
    assert snapshot(ctx.db, cid) == before


def test_a_short_balance_is_refused_and_nothing_changes(ctx):
    cid = new_customer(ctx)
    spend(ctx, cid, "60")
    before = snapshot(ctx.db, cid)
    with pytest.raises(InsufficientCredits) as error:
        spend_credits(ctx, cid, amount="40.001", feature="standard_models", reference="big")
    assert error.value.code == "insufficient_credits"
    assert snapshot(ctx.db, cid) == before
    # Nor is the reference used up: the job can be retried once there are credits.
    grant_promo_credits(ctx, cid, amount="1", reason="goodwill")
    assert spend_credits(ctx, cid, amount="40.001", feature="standard_models", reference="big").balance == c("0.999")


def test_a_refused_first_spend_of_the_day_creates_no_free_lot(ctx):
    cid = new_customer(ctx)
    before = snapshot(ctx.db, cid)
    with pytest.raises(InsufficientCredits):
        spend(ctx, cid, "100.001")
    assert snapshot(ctx.db, cid) == before


BAD_INPUT = [
    (dict(amount="-1"), InvalidRequest, "invalid_request", "amount"),
    (dict(amount="0"), InvalidRequest, "invalid_request", "amount"),
    (dict(amount="1.0001"), InvalidRequest, "invalid_request", "amount"),
    (dict(amount="NaN"), InvalidRequest, "invalid_request", "amount"),
    (dict(amount="Infinity"), InvalidRequest, "invalid_request", "amount"),
    (dict(amount="ten"), InvalidRequest, "invalid_request", "amount"),
    (dict(amount=True), InvalidRequest, "invalid_request", "amount"),
    (dict(amount=None), InvalidRequest, "invalid_request", "amount"),
    (dict(feature="warp_drive"), InvalidRequest, "unknown_feature", "feature"),
    (dict(reference=""), InvalidRequest, "invalid_request", "reference"),
    (dict(reference="x" * 256), InvalidRequest, "invalid_request", "reference"),
    (dict(customer="cus_nobody"), NotFound, "not_found", "customer"),
]


@pytest.mark.parametrize("change, error_type, code, param", BAD_INPUT)
def test_bad_input_gets_a_stable_code_and_changes_nothing(ctx, change, error_type, code, param):
    cid = new_customer(ctx)
    spend(ctx, cid, "1")
    before = snapshot(ctx.db, cid)
    args = dict(amount="5", feature="standard_models", reference="job-x") | change
    customer = args.pop("customer", cid)
    with pytest.raises(error_type) as error:
        spend_credits(ctx, customer, **args)
    assert (error.value.code, error.value.param) == (code, param)
    assert snapshot(ctx.db, cid) == before
    assert_ledger_clean(ctx.db)


def test_pro_features_need_a_paid_subscription_and_are_never_paid_with_free_credits(ctx):
    cid = new_customer(ctx)
    spend(ctx, cid, "1")  # today's free lot exists
    before = snapshot(ctx.db, cid)
    with pytest.raises(Forbidden) as error:
        spend(ctx, cid, "1", "pro_models")
    assert (error.value.code, error.value.param) == ("subscription_required", "feature")
    assert snapshot(ctx.db, cid) == before

    subscribed(ctx, cid)  # Basic: 2000 plan credits; the free lot of today stays until midnight
    with pytest.raises(InsufficientCredits):
        spend(ctx, cid, "2000.001", "pro_models")  # 99 free credits can't help
    assert {d.kind for d in spend(ctx, cid, "2000", "pro_models").draws} == {"subscription"}
    with pytest.raises(Forbidden) as error:
        spend(ctx, cid, "1", "private_generations")  # not in Basic
    assert error.value.code == "feature_not_in_plan"
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).by_kind["free"] == c(99)


def test_a_refund_returns_the_credits_to_the_lots_they_came_from(ctx):
    cid = new_customer(ctx)
    promo = grant_promo_credits(ctx, cid, amount="50", reason="x")
    result = spend_credits(ctx, cid, amount="130", feature="standard_models", reference="job-1")
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(20)

    refund = refund_spend(ctx, cid, reference="job-1")

    assert refund.amount == c(130) and refund.expired == c(0) and refund.balance == c(150)
    assert sorted((d.kind, d.amount) for d in refund.returned) == [("free", c(100)), ("promo", c(30))]
    assert lot_remaining(ctx.db, promo.id) == c(50)
    assert lot_remaining(ctx.db, result.draws[0].lot_id) == c(100)
    assert ctx.db.read(lambda session: get_spend(session, cid, "job-1")).status == "refunded"
    # A replay of the spend still returns the first result; it does not spend again.
    assert spend_credits(ctx, cid, amount="130", feature="standard_models", reference="job-1").replayed
    assert ctx.db.read(lambda session: get_balance(ctx, session, cid)).available == c(150)
    assert_ledger_clean(ctx.db)


def test_a_refund_to_a_lot_that_expired_since_is_recorded_as_expired(ctx):
    cid = new_customer(ctx)
    grant_promo_credits(ctx, cid, amount="50", reason="x")
    spend_credits(ctx, cid, amount="120", feature="standard_models", reference="job-1")  # free 100 + promo 20
    ctx.clock.set(START + timedelta(days=1))  # today's free lot expired at midnight

    refund = refund_spend(ctx, cid, reference="job-1")

    assert refund.expired == c(100)
    balance = ctx.db.read(lambda session: get_balance(ctx, session, cid))
    assert balance.by_kind["promo"] == c(50)
    assert balance.by_kind["free"] == c(100)  # the new day's, not yet created
    free_lot = next(d.lot_id for d in refund.returned if d.kind == "free")
    last = entries_of(ctx.db, cid)[-3:]  # both refunds, then the free lot expires again
    assert sorted((kind, amount) for kind, amount, _ in last) == [("expire", c(100)), ("refund", c(20)),
                                                                  ("refund", c(100))]
    assert [lot for kind, _, lot in last if kind == "expire"] == [free_lot]
    assert_ledger_clean(ctx.db)


def test_refund_errors(ctx):
    cid = new_customer(ctx)
    spend_credits(ctx, cid, amount="10", feature="standard_models", reference="job-1")
    refund_spend(ctx, cid, reference="job-1")
    before = snapshot(ctx.db, cid)
    with pytest.raises(Conflict) as error:
        refund_spend(ctx, cid, reference="job-1")
    assert error.value.code == "already_refunded"
    with pytest.raises(NotFound) as error:
        refund_spend(ctx, cid, reference="job-404")
    assert error.value.param == "reference"
    with pytest.raises(NotFound) as error:
        refund_spend(ctx, "cus_nobody", reference="job-1")
    assert error.value.param == "customer"
    assert snapshot(ctx.db, cid) == before


def test_todays_free_credits_have_their_id_before_they_are_first_used(ctx):
    cid, other = new_customer(ctx), new_customer(ctx)
    [before] = ctx.db.read(lambda session: get_balance(ctx, session, cid)).lots
    assert before.kind == "free" and before.id.startswith("lot_")
    assert before.id != ctx.db.read(lambda session: get_balance(ctx, session, other)).lots[0].id

    spent = spend_credits(ctx, cid, amount="1", feature="standard_models", reference="job-1")

    assert [draw.lot_id for draw in spent.draws] == [before.id]
    [after] = ctx.db.read(lambda session: get_balance(ctx, session, cid)).lots
    assert (after.id, after.remaining) == (before.id, c(99))
