"""Coupons over the calendar: a repeating coupon counts the first charge and each renewal, then
the price is whole again; a `once` coupon discounts the first charge only; a `forever` coupon
discounts every renewal, through a plan change."""

from __future__ import annotations

from scenario_kit import utc
from sqlalchemy import select

from creditflow.coupon.models import Coupon, SubscriptionDiscount
from creditflow.coupon.service import CouponInput, create_coupon
from creditflow.purchase.change import change_subscription
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 1, 31, 9)


def _coupon(world, **fields) -> None:
    with world.db.transaction() as session:
        create_coupon(world.ctx, session, CouponInput(**fields), START)


def _periods_left(world, sub_id: str):
    with world.db.transaction(readonly=True) as session:
        held = session.get(SubscriptionDiscount, sub_id)
        return "none" if held is None else held.periods_left


def test_a_repeating_coupon_discounts_three_charges_then_the_full_price(world):
    _coupon(world, code="THREE", duration="repeating", duration_periods=3, percent_off="12.5")
    alice = world.shopper(START)

    sub = subscribe(world.ctx, alice.id, "basic", "monthly", coupon="THREE")

    # Period 1: 900 less 12.5% (112.5, rounded half up to 113).
    assert alice.charged() == [787]
    assert _periods_left(world, sub.id) == 2
    # Month ends: 28 Feb, 31 Mar, 30 Apr, 31 May.
    alice.advance(utc(2026, 2, 28, 9))
    assert alice.charged() == [787, 787] and _periods_left(world, sub.id) == 1
    alice.advance(utc(2026, 3, 31, 9))
    assert alice.charged() == [787, 787, 787] and _periods_left(world, sub.id) == 0
    alice.advance(utc(2026, 4, 30, 9))
    assert alice.charged() == [787, 787, 787, 900]
    assert _periods_left(world, sub.id) == "none"  # used up, removed with the fourth renewal
    alice.advance(utc(2026, 5, 31, 9))
    assert alice.charged() == [787, 787, 787, 900, 900]
    invoices = alice.invoices()
    assert [i.discount for i in invoices] == [113, 113, 113, 0, 0]
    assert [[line.kind for line in i.lines] for i in invoices[:2]] == [["subscription", "discount"]] * 2
    with world.db.transaction(readonly=True) as session:
        assert session.scalar(select(Coupon.times_redeemed).where(Coupon.code == "THREE")) == 1
    assert len(alice.events("coupon.redeemed", plan_only=False)) == 1


def test_a_once_coupon_discounts_the_first_charge_only(world):
    _coupon(world, code="FIRST", duration="once", amount_off=500)
    bob = world.shopper(START)
    subscribe(world.ctx, bob.id, "standard", "monthly", coupon="FIRST")
    bob.advance(utc(2026, 3, 31, 9))
    assert bob.charged() == [2500, 3000, 3000]


def test_a_forever_coupon_follows_the_subscription_through_an_upgrade(world):
    _coupon(world, code="ALWAYS", duration="forever", percent_off=10)
    carol = world.shopper(START)
    sub = subscribe(world.ctx, carol.id, "basic", "monthly", coupon="ALWAYS")
    carol.advance(utc(2026, 2, 28, 9))
    assert carol.charged() == [810, 810]

    change_subscription(world.ctx, sub.id, plan="standard", term="monthly", timing="immediate")
    upgrade = carol.invoices()[-1]
    assert upgrade.discount == (upgrade.subtotal + 5) // 10 and upgrade.discount > 0  # 10%, half up
    carol.advance(utc(2026, 3, 28, 9))  # the upgrade started a new term on 28 Feb
    assert carol.charged()[-1] == 2700
    assert _periods_left(world, sub.id) is None
