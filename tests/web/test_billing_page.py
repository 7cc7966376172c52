"""The Billing and Subscription page, end to end in Chromium: upgrades
and their previews, downgrades, scheduled changes, cancel and resume, top-ups and invoices.
Every customer lives on a test clock, so every date and amount is exact."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from web_kit import WebEnv, both_backends, flash, shot, utc


def test_the_page_shows_plan_credits_and_a_card_for_every_plan_and_term(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.open(page)

    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")
    expect(page.get_by_test_id("status")).to_have_text("Active")
    # 31 January + 1 month is 28 February (day clamped), at the same time of day.
    expect(page.get_by_test_id("next-renewal")).to_have_text("28 Feb 2026 · $30.00")
    expect(page.get_by_test_id("balance-subscription")).to_contain_text("8,000")
    expect(page.get_by_test_id("balance-subscription")).to_contain_text("Refreshes to 8,000 on 28 Feb 2026")
    expect(page.get_by_test_id("total-credits")).to_have_text("8,000")

    # 4 plans x 3 terms; the current one has no button.
    cards = page.locator("article.plan-card")
    expect(cards).to_have_count(12)
    current = page.get_by_test_id("card-standard-monthly")
    expect(current).to_contain_text("Current plan")
    expect(current.locator("a, button")).to_have_count(0)
    expect(page.get_by_role("link", name="Upgrade to Ultimate (monthly)")).to_be_visible()
    expect(page.get_by_role("link", name="Upgrade to Standard (quarterly)")).to_be_visible()
    expect(page.get_by_role("button", name="Downgrade to Basic (monthly)")).to_be_visible()
    expect(page.get_by_role("button", name="Downgrade to Basic (yearly)")).to_be_visible()
    shot(page, "billing-overview")


@both_backends
def test_an_immediate_upgrade_is_the_default_and_enter_takes_it(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.advance(utc(2026, 2, 14, 10))  # 14 of the term's 28 days used: half of $30 is unused
    shopper.open(page)

    # Keyboard only: focus the card's button, Enter; then Enter on each step.
    page.get_by_role("link", name="Upgrade to Ultimate (monthly)").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Upgrade to Ultimate")).to_be_visible()
    immediately = page.get_by_role("radio", name="Immediately")
    expect(immediately).to_be_checked()
    expect(immediately).to_be_focused()
    expect(page.get_by_text("Nothing is charged until then")).to_be_visible()
    shot(page, "upgrade-1-timing")

    page.keyboard.press("Enter")
    expect(page).to_have_title("Review your upgrade · Billing")
    expect(page.get_by_role("heading", name="Plan summary")).to_be_visible()
    lines = page.get_by_test_id("quote-lines")
    expect(lines).to_contain_text("Ultimate plan, monthly")
    expect(lines).to_contain_text("$50.00")
    expect(lines).to_contain_text("Unused time on Standard")
    expect(lines).to_contain_text("-$15.00")
    expect(page.get_by_test_id("amount-due")).to_have_text("$35.00")
    expect(page.get_by_test_id("next-renewal")).to_have_text("14 Mar 2026")
    confirm = page.get_by_role("button", name="Confirm and pay $35.00")
    expect(confirm).to_be_focused()
    shot(page, "upgrade-2-review")

    page.keyboard.press("Enter")
    expect(flash(page)).to_have_text("You're now on Ultimate (monthly). We charged $35.00.")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Ultimate")
    expect(page.get_by_test_id("next-renewal")).to_have_text("14 Mar 2026 · $50.00")
    expect(page.get_by_test_id("balance-subscription")).to_contain_text("16,000")
    expect(page.get_by_test_id("card-ultimate-monthly")).to_contain_text("Current plan")
    expect(page.get_by_role("button", name="Downgrade to Standard (monthly)")).to_be_visible()
    shot(page, "upgrade-3-done")


@both_backends
def test_an_end_of_period_upgrade_blocks_cancelling_until_the_scheduled_change_is_cancelled(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.advance(utc(2026, 2, 10, 9))
    shopper.open(page)
    stale_tab = page.context.new_page()  # opened before the upgrade is scheduled
    stale_tab.goto("/billing/cancel")
    expect(stale_tab.get_by_role("heading", name="Cancel your subscription?")).to_be_visible()
    shot(stale_tab, "cancel-confirm")

    page.get_by_role("link", name="Upgrade to Ultimate (monthly)").click()
    page.get_by_role("radio", name="At the end of the current period").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("effective")).to_contain_text("Takes effect on 28 Feb 2026")
    expect(page.get_by_text("Nothing is charged today.")).to_be_visible()
    expect(page.get_by_test_id("amount-then")).to_have_text("$50.00")
    shot(page, "upgrade-end-of-period-review")
    page.get_by_role("button", name="Confirm scheduled upgrade").click()

    expect(flash(page)).to_have_text("Your upgrade to Ultimate (monthly) is scheduled for 28 Feb 2026. "
                                     "Nothing was charged today.")
    scheduled = page.get_by_test_id("scheduled-change")
    expect(scheduled).to_contain_text("Upgrade to Ultimate (monthly) on 28 Feb 2026.")
    expect(scheduled).to_contain_text("You'll be charged $50.00 then.")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")
    expect(page.get_by_test_id("next-renewal")).to_have_text("28 Feb 2026 · $50.00 (Ultimate)")
    # While an upgrade is scheduled, the cancel control is unavailable, and says why.
    cancel = page.get_by_role("button", name="Cancel subscription")
    expect(cancel).to_be_disabled()
    expect(page.get_by_test_id("cancel-blocked")).to_have_text(
        "You can't cancel while an upgrade is scheduled. Cancel the scheduled upgrade first, "
        "then cancel your subscription.")
    shot(page, "billing-scheduled-upgrade")

    # The tab opened earlier still offers the cancellation: the server refuses it, in words.
    stale_tab.get_by_role("button", name="Cancel subscription").click()
    expect(flash(stale_tab)).to_contain_text("You can't cancel while an upgrade is scheduled.")
    expect(stale_tab.get_by_test_id("status")).to_have_text("Active")
    shot(stale_tab, "cancel-refused")

    # Cancelling the scheduled change: the current plan simply continues.
    page.get_by_role("button", name="Cancel scheduled change").click()
    expect(flash(page)).to_have_text("The scheduled change to Ultimate is cancelled. You stay on Standard.")
    expect(page.get_by_test_id("scheduled-change")).to_have_count(0)
    expect(page.get_by_test_id("next-renewal")).to_have_text("28 Feb 2026 · $30.00")
    expect(page.get_by_role("link", name="Cancel subscription")).to_be_enabled()


@both_backends
def test_a_downgrade_is_reviewed_then_takes_effect_at_the_end_of_the_period(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.advance(utc(2026, 2, 10, 9))
    shopper.open(page)

    page.get_by_role("button", name="Downgrade to Basic (monthly)").click()
    expect(page.get_by_role("heading", name="Downgrade to Basic")).to_be_visible()
    expect(page.get_by_test_id("effective")).to_contain_text("Takes effect on 28 Feb 2026, at the end of your "
                                                             "current billing period")
    expect(page.get_by_test_id("support-note")).to_contain_text("An immediate downgrade can only be made by our "
                                                                "support team")
    expect(page.get_by_test_id("amount-then")).to_have_text("$9.00")
    shot(page, "downgrade-review")
    page.get_by_role("button", name="Confirm downgrade").click()
    expect(flash(page)).to_have_text("Your downgrade to Basic (monthly) is scheduled for 28 Feb 2026. "
                                     "Nothing was charged today.")
    expect(page.get_by_test_id("scheduled-change")).to_contain_text("Downgrade to Basic (monthly) on 28 Feb 2026.")

    # Scheduling another change replaces it, and says so.
    page.get_by_role("button", name="Downgrade to Basic (quarterly)").click()
    expect(page.get_by_text("This replaces the change to Basic (monthly) that is already scheduled.")).to_be_visible()
    page.get_by_role("button", name="Confirm downgrade").click()
    expect(flash(page)).to_contain_text("It replaces the change to Basic that was scheduled.")
    expect(page.get_by_test_id("scheduled-change")).to_contain_text("Downgrade to Basic (quarterly) on 28 Feb 2026.")
    expect(page.get_by_test_id("scheduled-change")).to_contain_text("$22.95")

    # A downgrade waits: Standard and its credits stay until the period ends; then the renewal charges Basic.
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")
    shopper.advance(utc(2026, 2, 28, 10))
    page.reload()
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Basic")
    expect(page.get_by_test_id("next-renewal")).to_have_text("31 May 2026 · $22.95")
    expect(page.get_by_test_id("balance-subscription")).to_contain_text("2,000")
    expect(page.locator("#invoices tbody tr").first).to_contain_text("$22.95")


def test_cancel_at_the_end_of_the_period_and_resume(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.open(page)

    page.get_by_role("link", name="Cancel subscription").click()
    expect(page.get_by_text("You keep Standard, its features and its credits until 28 Feb 2026.")).to_be_visible()
    page.get_by_role("button", name="Cancel subscription").click()
    expect(flash(page)).to_have_text("Your subscription is cancelled. You keep Standard and its credits until "
                                     "28 Feb 2026, and won't be charged again.")
    expect(page.get_by_test_id("status")).to_have_text("Cancels at period end")
    expect(page.get_by_test_id("access-ends")).to_have_text("28 Feb 2026")
    expect(page.get_by_role("button", name="Downgrade to Basic (monthly)")).to_be_disabled()
    expect(page.get_by_text("Resume your subscription to schedule a downgrade.")).to_be_visible()
    shot(page, "billing-canceling")

    page.get_by_role("button", name="Resume subscription").click()
    expect(flash(page)).to_have_text("Your subscription is back on. It renews on 28 Feb 2026.")
    expect(page.get_by_test_id("status")).to_have_text("Active")
    expect(page.get_by_test_id("next-renewal")).to_have_text("28 Feb 2026 · $30.00")


@both_backends
def test_a_declined_card_is_said_in_plain_words_and_changes_nothing(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.pay_with("pm_card_declined")
    shopper.advance(utc(2026, 2, 14, 10))
    shopper.open(page)

    page.get_by_role("link", name="Upgrade to Ultimate (monthly)").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Confirm and pay $35.00").click()
    expect(flash(page)).to_have_text("We couldn't take the payment: your card was declined. "
                                     "Nothing was charged and nothing changed.")
    expect(flash(page)).to_have_attribute("role", "alert")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")
    expect(page.get_by_test_id("next-renewal")).to_have_text("28 Feb 2026 · $30.00")
    expect(page.get_by_test_id("balance-subscription")).to_contain_text("8,000")
    shot(page, "upgrade-declined")


@both_backends
def test_an_expired_quote_is_priced_again_and_nothing_changes(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.advance(utc(2026, 2, 14, 10))
    shopper.open(page)
    page.get_by_role("link", name="Upgrade to Ultimate (monthly)").click()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("amount-due")).to_have_text("$35.00")

    shopper.advance(utc(2026, 2, 14, 10, 31))  # quotes last 30 minutes
    page.get_by_role("button", name="Confirm and pay $35.00").click()
    expect(flash(page)).to_contain_text("This price was only valid for a limited time and has expired. "
                                        "Nothing was charged and nothing changed.")
    # A fresh quote, 31 minutes later: $15.00 - 31 min of a 28-day $30 term unused = $14.98.
    expect(page.get_by_test_id("amount-due")).to_have_text("$35.02")
    shot(page, "upgrade-quote-expired")
    page.get_by_role("button", name="Confirm and pay $35.02").click()
    expect(flash(page)).to_have_text("You're now on Ultimate (monthly). We charged $35.02.")


@both_backends
def test_a_top_up_bundle_is_chosen_reviewed_and_bought_with_the_keyboard(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.open(page)

    page.get_by_role("link", name="Buy credits").focus()
    page.keyboard.press("Enter")
    first = page.get_by_role("radio", name="1,000 credits")
    expect(first).to_be_checked()
    expect(first).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="5,000 credits")).to_be_checked()
    shot(page, "topup-1-choose")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("amount-due")).to_have_text("$45.00")
    shot(page, "topup-2-review")
    expect(page.get_by_role("button", name="Confirm and pay $45.00")).to_be_focused()
    page.keyboard.press("Enter")

    expect(flash(page)).to_have_text("Added 5,000 credits. We charged $45.00.")
    expect(page.get_by_test_id("balance-top_up")).to_contain_text("5,000")
    expect(page.get_by_test_id("total-credits")).to_have_text("13,000")
    expect(page.locator("#invoices tbody tr").first).to_contain_text("$45.00")
    shot(page, "topup-3-done")


def test_a_declined_top_up_grants_nothing(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.pay_with("pm_card_declined")
    shopper.open(page)
    page.get_by_role("link", name="Buy credits").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Confirm and pay $10.00").click()
    expect(flash(page)).to_have_text("We couldn't take the payment: your card was declined. "
                                     "Nothing was charged and nothing changed.")
    expect(page.get_by_test_id("balance-top_up")).to_contain_text("0")
    expect(page.get_by_test_id("total-credits")).to_have_text("8,000")


def test_top_ups_are_unavailable_on_free_and_while_past_due_saying_why(env: WebEnv, page: Page):
    free = env.shopper(utc(2026, 1, 31, 10), plan=None)
    free.open(page)
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Free")
    expect(page.get_by_role("button", name="Buy credits")).to_be_disabled()
    expect(page.get_by_test_id("topup-blocked")).to_have_text(
        "Credit top-ups are for subscribers. Choose a plan to buy extra credits.")
    expect(page.get_by_test_id("balance-free")).to_contain_text("100")
    shot(page, "billing-free")

    overdue = env.shopper(utc(2026, 1, 31, 10))
    overdue.pay_with("pm_card_declined")
    overdue.advance(utc(2026, 2, 28, 10))  # the renewal is declined
    overdue.open(page)
    expect(page.get_by_test_id("status")).to_have_text("Payment overdue")
    expect(page.get_by_test_id("next-retry")).to_have_text("1 Mar 2026 · $30.00")
    expect(page.get_by_role("button", name="Buy credits")).to_be_disabled()
    expect(page.get_by_test_id("topup-blocked")).to_have_text(
        "Credit top-ups are paused while a payment is overdue. They're back once it goes through.")
    expect(page.get_by_role("button", name="Upgrade to Ultimate (monthly)")).to_be_disabled()
    shot(page, "billing-past-due")


def test_a_free_customer_upgrades_to_a_plan(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan=None)
    shopper.open(page)
    page.get_by_role("link", name="Upgrade to Basic (yearly)").click()
    expect(page.get_by_test_id("amount-due")).to_have_text("$75.60")
    expect(page.get_by_text("then every year from 31 Jan 2027")).to_be_visible()
    shot(page, "subscribe-review")
    page.get_by_role("button", name="Confirm and pay $75.60").click()
    expect(flash(page)).to_have_text("Welcome to Basic! Your 2,000 plan credits are ready.")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Basic")
    expect(page.get_by_test_id("next-renewal")).to_have_text("31 Jan 2027 · $75.60")
    # Plan credits are granted monthly whatever the term.
    expect(page.get_by_test_id("balance-subscription")).to_contain_text("Refreshes to 2,000 on 28 Feb 2026")


def test_an_upgrade_worth_less_than_the_unused_time_credits_the_account_balance(env: WebEnv, page: Page):
    # Standard yearly ($252) to Ultimate monthly ($50) after a month: ~$230 unused, more than $50.
    shopper = env.shopper(utc(2026, 1, 31, 10), term="yearly")
    shopper.advance(utc(2026, 2, 28, 10))
    shopper.open(page)
    page.get_by_role("link", name="Upgrade to Ultimate (monthly)").click()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_test_id("amount-due")).to_have_text("$0.00")
    # 337 of 365 days are left: $252.00 x 337/365 = $232.67; $232.67 - $50.00 = $182.67.
    expect(page.get_by_test_id("to-balance")).to_have_text(
        "The remaining $182.67 goes to your account balance and pays your next charges first.")
    shot(page, "upgrade-to-balance-review")
    page.get_by_role("button", name="Confirm upgrade").click()
    expect(flash(page)).to_have_text("You're now on Ultimate (monthly). Nothing was charged: your credit covered it.")
    expect(page.get_by_test_id("account-balance")).to_contain_text("$182.67")
    # The next renewal is paid from the balance first.
    shopper.advance(utc(2026, 3, 28, 10))
    page.reload()
    expect(page.get_by_test_id("account-balance")).to_contain_text("$132.67")
