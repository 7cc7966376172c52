"""What the billing page and the console say: the credits card follows a scheduled downgrade,
reviews promise only what is true (no "Done" step, no price validity without a charge), an
upgrade's replaced plan credits don't read as a loss, invoices show their payment attempts;
the console lists recent customers, a customer's ledger and events, and a failed grant as
failed. Every customer lives on a test clock, so every date and amount is exact."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_kit import WebEnv, flash, make_staff, shot, sign_in, utc

from creditflow.purchase.change import change_subscription
from creditflow.support.models import AuditRecord


def _sub_id(env: WebEnv, customer_id: str) -> str:
    return env.http.get(f"/v1/customers/{customer_id}/subscription").json()["id"]


def _invoices(env: WebEnv, customer_id: str) -> list[dict]:
    return env.http.get("/v1/invoices", params={"customer": customer_id}).json()["data"]


def test_the_credits_card_follows_a_scheduled_downgrade(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan="standard", term="monthly")
    change_subscription(env.ctx, _sub_id(env, shopper.id), plan="basic", term="monthly", timing="end_of_period")
    shopper.open(page)
    card = page.get_by_test_id("balance-subscription")
    expect(card).to_contain_text("8,000")  # Standard's credits stay until then
    expect(card).to_contain_text("Refreshes to 2,000 on 28 Feb 2026, when your plan changes to Basic")


def test_a_downgrade_review_promises_no_price_validity_and_no_done_step(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan="standard", term="monthly")
    shopper.open(page)
    page.get_by_role("button", name="Downgrade to Basic (monthly)").click()
    expect(page.get_by_role("heading", name="Downgrade to Basic")).to_be_visible()
    expect(page.get_by_test_id("amount-then")).to_have_text("$9.00")
    expect(page.get_by_text("valid until")).to_have_count(0)  # nothing is charged now: no price to expire
    expect(page.locator("ol.steps")).to_have_count(0)
    shot(page, "downgrade-review-no-validity")

    # The subscription changes meanwhile: confirming shows the change again, without talk of a price.
    review = page.url
    change_subscription(env.ctx, _sub_id(env, shopper.id), plan="basic", term="yearly", timing="end_of_period")
    page.get_by_role("button", name="Confirm downgrade").click()
    expect(flash(page)).to_have_text("This review was open for a while, or your subscription changed since. "
                                     "Nothing changed; here is the change again, as it stands now.")
    assert page.url != review and "/billing/change/review/" in page.url
    expect(page.get_by_test_id("effective")).to_contain_text("28 Feb 2026")

    # An upgrade charges now: its price has a validity, and the stepper lists only real steps.
    page.goto("/billing/change?plan=ultimate&term=monthly")
    expect(page.locator("ol.steps li")).to_have_text(["Timing", "Review"])
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("ol.steps li")).to_have_text(["Timing", "Review"])
    expect(page.get_by_test_id("price-valid-until")).to_contain_text("This price is valid until 31 Jan 2026, 10:30 UTC")


def test_plan_credits_replaced_by_an_upgrade_read_as_replaced_not_expired(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan="basic", term="monthly")
    shopper.advance(utc(2026, 2, 10, 10))
    change_subscription(env.ctx, _sub_id(env, shopper.id), plan="standard", term="monthly", timing="immediate")
    shopper.open(page)
    page.goto("/billing/credits/history")
    lines = page.get_by_test_id("history-line")
    expect(lines.filter(has_text="Plan credits replaced by the new plan's credits")).to_have_count(1)
    expect(lines.filter(has_text="Expired plan credits")).to_have_count(0)
    expect(lines.filter(has_text="Plan credits granted").first).to_contain_text("+8,000")

    # A month later the unused plan credits expire as they always do: that one is an expiry.
    shopper.advance(utc(2026, 3, 10, 10))
    page.reload()
    expect(lines.filter(has_text="Expired plan credits")).to_have_count(1)
    expect(lines.filter(has_text="Plan credits replaced by the new plan's credits")).to_have_count(1)


def test_an_invoice_page_shows_its_payment_attempts(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan="standard", term="monthly")
    shopper.pay_with("pm_card_declined")
    shopper.advance(utc(2026, 3, 1, 10))  # the renewal is declined, then its first retry too
    renewal = next(inv for inv in _invoices(env, shopper.id) if inv["purpose"] == "renewal")
    first = next(inv for inv in _invoices(env, shopper.id) if inv["purpose"] == "subscription_create")
    shopper.open(page)

    page.goto(f"/billing/invoices/{renewal['id']}")
    attempts = page.get_by_test_id("payment-attempts").locator("tbody tr")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("28 Feb 2026, 10:00 UTC")
    expect(attempts.nth(0)).to_contain_text("Failed")
    expect(attempts.nth(0)).to_contain_text("Your card was declined.")
    expect(attempts.nth(0)).to_contain_text("$30.00")
    expect(attempts.nth(1)).to_contain_text("1 Mar 2026, 10:00 UTC")
    shot(page, "invoice-payment-attempts")

    page.goto(f"/billing/invoices/{first['id']}")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("Succeeded")


def test_the_console_lists_recent_customers_and_a_customers_ledger_and_events(env: WebEnv, page: Page):
    # Later than any other test's customer (the page shares its database with them): the newest.
    shopper = env.shopper(utc(2031, 1, 31, 10), plan="standard", term="monthly", name="Katherine Johnson")
    username, password = make_staff(env)
    sign_in(page, username, password)
    recent = page.get_by_test_id("recent-customers")
    recent.get_by_role("link", name=shopper.email).click()

    ledger = page.locator("#ledger")
    expect(ledger.get_by_test_id("history-line").filter(has_text="Plan credits granted")).to_contain_text("+8,000")
    events = page.get_by_test_id("events")
    expect(events.get_by_test_id("event-line").filter(has_text="subscription.created")).to_have_count(1)
    expect(events).to_contain_text("plan: standard")
    # Money in event data is written as money everywhere else is.
    expect(events.get_by_test_id("event-line").filter(has_text="invoice.paid")).to_contain_text("total: $30.00")
    shot(page, "console-customer-ledger-events")


def test_a_failed_console_grant_is_recorded_as_failed_and_amounts_have_separators(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan="standard", term="monthly")
    username, password = make_staff(env)
    sign_in(page, username, password)
    page.goto(f"/console/customers/{shopper.id}")

    page.locator("#promo-amount").fill("lots")
    page.locator("#promo-reason").fill("Goodwill")
    page.get_by_role("button", name="Grant credits").click()
    expect(flash(page)).to_have_text(
        "Amount is not a number like \"73.5\" (ASCII digits, at most 3 decimal places): 'lots'.")
    row = page.locator("#audit").get_by_test_id("audit-row").first
    expect(row).to_contain_text("Grant lots promotional credits, never expiring")
    expect(row).not_to_contain_text("Granted")
    expect(row).to_contain_text("failed")

    page.locator("#promo-amount").fill("1500")
    page.locator("#promo-reason").fill("Goodwill")
    page.get_by_role("button", name="Grant credits").click()
    expect(flash(page)).to_have_text("Granted 1,500 promotional credits.")
    expect(page.locator("#audit").get_by_test_id("audit-row").first).to_contain_text(
        "Granted 1,500 promotional credits, never expiring")

    with env.ctx.db.transaction(readonly=True) as session:
        records = list(session.scalars(select(AuditRecord).where(AuditRecord.customer_id == shopper.id)
                                       .order_by(AuditRecord.seq)))
    assert [(r.summary, r.outcome) for r in records] == [
        ("Grant lots promotional credits, never expiring", "failed"),
        ("Granted 1,500 promotional credits, never expiring", "succeeded")]


def test_a_change_the_use_case_would_refuse_is_not_offered_by_its_own_page_either(env: WebEnv, page: Page):
    overdue = env.shopper(utc(2026, 1, 31, 10), plan="standard", term="monthly")
    overdue.pay_with("pm_card_declined")
    overdue.advance(utc(2026, 2, 28, 10))
    overdue.open(page)
    expect(page.locator("#plans-why")).to_have_text(
        "Plan changes are available again once your overdue payment goes through.")
    # The address of the upgrade page, opened anyway, answers with the same reason.
    page.goto("/billing/change?plan=ultimate&term=monthly")
    assert page.url.endswith("/billing")
    expect(flash(page)).to_have_text("Plan changes are available again once your overdue payment goes through.")


def test_the_cancel_page_is_not_offered_while_cancelling_would_be_refused(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan="standard", term="monthly")
    change_subscription(env.ctx, _sub_id(env, shopper.id), plan="ultimate", term="monthly", timing="end_of_period")
    shopper.open(page)
    page.goto("/billing/cancel")
    assert page.url.endswith("/billing")
    expect(flash(page)).to_have_text("You can't cancel while an upgrade is scheduled. Cancel the scheduled upgrade "
                                     "first, then cancel your subscription.")
    expect(page.get_by_test_id("status")).to_have_text("Active")
