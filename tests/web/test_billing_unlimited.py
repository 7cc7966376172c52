"""The billing page shows the plan's unlimited windows with their end, as long as they are open,
and earned credits (received by transfers) beside the others."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from web_kit import WebEnv, shot, utc

from creditflow.credits.transfers import transfer_credits


def test_the_billing_page_shows_an_open_unlimited_window_and_its_end(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan="creator", term="monthly")
    shopper.open(page)
    image = page.get_by_test_id("unlimited-image_fast")
    expect(image).to_contain_text("Image (fast model)")
    expect(image).to_contain_text("Unlimited until 7 Feb 2026, 10:00 UTC")
    expect(page.get_by_test_id("unlimited-video")).to_contain_text("Unlimited until 3 Feb 2026, 10:00 UTC")
    shot(page, "billing-unlimited-windows")

    shopper.advance(utc(2026, 2, 4, 10))  # video's 3 days are over, the images' 7 are not
    shopper.open(page)
    expect(page.get_by_test_id("unlimited-video")).to_have_count(0)
    expect(page.get_by_test_id("unlimited-image_fast")).to_be_visible()
    shopper.advance(utc(2026, 2, 28, 10))  # the next billing period opens them again
    shopper.open(page)
    expect(page.get_by_test_id("unlimited-video")).to_contain_text("Unlimited until 3 Mar 2026, 10:00 UTC")


def test_earned_credits_show_on_the_billing_page(env: WebEnv, page: Page):
    creator = env.shopper(utc(2026, 1, 31, 10), plan=None, payment_method=None)
    buyer = env.shopper(utc(2026, 1, 31, 10), plan="standard")
    transfer_credits(env.ctx, sender=buyer.id, receiver=creator.id, amount="42.5", feature="standard_models",
                     reference=f"download-{creator.id}")
    creator.open(page)
    expect(page.get_by_test_id("balance-earned")).to_contain_text("42.5")
    expect(page.get_by_test_id("balance-earned")).to_contain_text("Never expire")
