"""The promotion-code field of the review screens, in Chromium: a code applied on a review shows
its discount and the total to pay, a code that can't be used says why next to the field (and
changes nothing), and confirming charges the discounted total."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect
from web_kit import WebEnv, flash, make_staff, sign_in, utc

from creditflow.coupon.service import CouponInput, create_coupon
from creditflow.subscription.discount import apply_coupon
from creditflow.subscription.repository import live_subscription


def _coupon(env: WebEnv, **fields) -> str:
    code = f"WEB{uuid.uuid4().hex[:6].upper()}"
    with env.ctx.db.transaction() as session:
        create_coupon(env.ctx, session, CouponInput(code=code, **fields), env.wall.now())
    return code


def _apply(page: Page, code: str) -> None:
    page.get_by_label("Promotion code").fill(code)
    page.get_by_role("button", name="Apply").click()


def test_a_top_up_review_takes_a_promotion_code(env: WebEnv, page: Page):
    code = _coupon(env, duration="once", percent_off=10, bundles=["credits_5000"])
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.open(page)
    page.goto(f"{env.base_url}/billing/credits/buy/review?bundle=credits_5000")
    expect(page.get_by_test_id("amount-due")).to_have_text("$45.00")

    _apply(page, "NO-SUCH-CODE")
    expect(page.get_by_test_id("coupon-error")).to_have_text(
        "That promotion code doesn't exist. Check the spelling and try again.")
    expect(page.get_by_test_id("amount-due")).to_have_text("$45.00")

    _apply(page, code)
    expect(page.get_by_test_id("coupon-error")).to_have_count(0)
    expect(page.get_by_test_id("discount")).to_contain_text("-$4.50")
    expect(page.get_by_test_id("amount-due")).to_have_text("$40.50")
    page.get_by_role("button", name="Confirm and pay $40.50").click()
    expect(flash(page)).to_have_text("Added 5,000 credits. We charged $40.50.")


def test_a_subscribe_review_says_when_a_code_is_not_for_this_plan(env: WebEnv, page: Page):
    code = _coupon(env, duration="once", amount_off=300, plans=["basic"])
    shopper = env.shopper(utc(2026, 1, 31, 10), plan=None)
    shopper.open(page)
    page.goto(f"{env.base_url}/billing/subscribe?plan=standard&term=monthly")
    _apply(page, code)
    expect(page.get_by_test_id("coupon-error")).to_have_text("That promotion code can't be used on this purchase.")
    expect(page.get_by_test_id("amount-due")).to_have_text("$30.00")

    page.goto(f"{env.base_url}/billing/subscribe?plan=basic&term=monthly")
    _apply(page, code)
    expect(page.get_by_test_id("amount-due")).to_have_text("$6.00")
    page.get_by_role("button", name="Confirm and pay $6.00").click()
    expect(flash(page)).to_contain_text("Welcome to Basic!")
    expect(page.locator("#invoices tbody tr").first).to_contain_text("$6.00")


def test_a_change_review_shows_the_discount_line_and_charges_it(env: WebEnv, page: Page):
    code = _coupon(env, duration="once", percent_off=50, plans=["ultimate"])
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.advance(utc(2026, 2, 14, 10))
    shopper.open(page)
    page.get_by_role("link", name="Upgrade to Ultimate (monthly)").click()
    page.get_by_role("button", name="Continue").click()
    due = page.get_by_test_id("amount-due").inner_text()

    _apply(page, "EXPIRED-OR-NOT")
    expect(page.get_by_test_id("coupon-error")).to_contain_text("doesn't exist")
    expect(page.get_by_test_id("amount-due")).to_have_text(due)

    _apply(page, code)
    lines = page.get_by_test_id("quote-lines")
    expect(lines).to_contain_text(f"Discount {code} (50% off)")
    discounted = page.get_by_test_id("amount-due").inner_text()
    assert discounted != due
    page.get_by_role("button", name=f"Confirm and pay {discounted}").click()
    expect(flash(page)).to_have_text(f"You're now on Ultimate (monthly). We charged {discounted}.")


def test_the_console_shows_a_customers_discount(env: WebEnv, page: Page):
    code = _coupon(env, duration="repeating", duration_periods=2, percent_off=15)
    shopper = env.shopper(utc(2026, 1, 31, 10))
    with env.ctx.db.transaction() as session:
        apply_coupon(env.ctx, session, live_subscription(session, shopper.id).id, code)
    username, password = make_staff(env)
    sign_in(page, username, password)
    page.goto(f"{env.base_url}/console/customers/{shopper.id}")
    # The next two charges: the terms from 28 Feb and from 31 Mar, which ends on 30 Apr.
    expect(page.get_by_test_id("discount")).to_contain_text(f"{code}, until the period ending 30 Apr 2026")
    # The billing page's next renewal is the discounted price.
    shopper.open(page)
    expect(page.get_by_test_id("next-renewal")).to_have_text("28 Feb 2026 · $25.50")
