"""Coupons through `creditflow.client`: support creates one, the host app reads it and uses it
on every purchase that takes one, and on an existing subscription."""

from __future__ import annotations

import pytest

from creditflow.client import Client, ConflictError, NotFoundError


def test_coupons_through_the_client(server, keys):
    server_key, support_key = keys
    with Client(server.url, server_key) as cf, Client(server.url, support_key) as support:
        created = support.coupons.create(code="HALF", percent_off=50, duration="forever")
        assert cf.coupons.get("HALF") == created and created["percent_off"] == "50"
        support.coupons.create(code="TOPUP", amount_off=100, duration="once", bundles=["credits_1000"])
        support.coupons.create(code="LATER", percent_off="10", duration="repeating", duration_periods=2)

        clock = cf.operations.create_test_clock(frozen_time="2026-03-10T10:00:00Z")
        customer = cf.customers.create(external_id="grace", email="grace@example.com", test_clock=clock["id"])
        cf.customers.set_payment_method(customer["id"], token="pm_card_ok")
        sub = cf.subscriptions.create(customer=customer["id"], plan="standard", term="monthly", coupon="HALF")
        assert sub["discount"] == {"coupon": "HALF", "ends_after_period": None}

        quote = cf.subscriptions.preview_change(sub["id"], plan="ultimate", term="monthly", coupon="LATER")
        assert "discount" in [line["kind"] for line in quote["lines"]]
        changed = cf.subscriptions.change(sub["id"], plan="ultimate", term="monthly", quote=quote["id"],
                                          coupon="LATER")
        assert changed["discount"]["coupon"] == "LATER"
        assert cf.subscriptions.apply_discount(sub["id"], coupon="HALF")["discount"]["coupon"] == "HALF"

        cf.credits.top_up(customer["id"], bundle="credits_1000", coupon="TOPUP")
        invoices = cf.invoices.list(customer=customer["id"])["data"]
        change_discount = -next(line["amount"] for line in quote["lines"] if line["kind"] == "discount")
        assert [invoice["discount"] for invoice in invoices] == [1500, change_discount, 100]
        assert cf.coupons.get("HALF")["times_redeemed"] == 2

        with pytest.raises(NotFoundError) as missing:
            cf.coupons.get("NOPE")
        assert missing.value.code == "coupon_not_found"
        with pytest.raises(ConflictError) as wrong_bundle:
            cf.credits.top_up(customer["id"], bundle="credits_5000", coupon="TOPUP")
        assert wrong_bundle.value.code == "coupon_not_applicable"
