"""The support console: sign-in with roles, finding a customer, and the support actions (an
immediate downgrade with the choice for the unused value, refunds with their eligibility, promo
grants), each with a reason and written to the audit log the console lists."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_kit import WebEnv, both_backends, flash, make_staff, shot, sign_in, utc

from creditflow.customer.models import Customer
from creditflow.refund.models import Refund
from creditflow.subscription.models import Subscription
from creditflow.support.models import AuditRecord


def _customer(env: WebEnv, customer_id: str) -> Customer:
    with env.ctx.db.transaction(readonly=True) as session:
        return session.get(Customer, customer_id)


def _audit_all(env: WebEnv) -> list[AuditRecord]:
    with env.ctx.db.transaction(readonly=True) as session:
        return list(session.scalars(select(AuditRecord).order_by(AuditRecord.seq)))


def _audit(env: WebEnv, customer_id: str) -> list[AuditRecord]:
    with env.ctx.db.transaction(readonly=True) as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.customer_id == customer_id)
                                    .order_by(AuditRecord.seq)))


def test_sign_in_needs_the_right_password_and_pages_need_a_sign_in(env: WebEnv, page: Page):
    username, password = make_staff(env)
    assert page.goto("/console").url.endswith("/console/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "console-sign-in")

    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(flash(page)).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value(username)

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Find a customer")).to_be_visible()
    expect(page.get_by_text(f"{username} support")).to_be_visible()
    # A support user is not an admin: the team page is not theirs.
    expect(page.get_by_role("link", name="Team")).to_have_count(0)
    assert page.goto("/console/users").status == 403

    page.goto("/console")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.goto("/console").url.endswith("/console/login")


@both_backends
def test_support_finds_a_customer_and_downgrades_at_once_refunding_the_unused_value(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), name="Grace Hopper")
    shopper.advance(utc(2026, 2, 14, 10))  # half of the $30 term is unused
    username, password = make_staff(env)
    sign_in(page, username, password)

    page.get_by_label("Email, name, customer id or external id").fill(shopper.email)
    page.keyboard.press("Enter")
    results = page.get_by_test_id("results")
    expect(results.locator("tbody tr")).to_have_count(1)
    shot(page, "console-search")
    results.get_by_role("link", name=shopper.email).click()

    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")
    expect(page.get_by_test_id("unused-value")).to_have_text("$15.00")
    shot(page, "console-customer")
    page.get_by_label("New plan").select_option(label="Basic (monthly)")
    page.get_by_label("Refund to the payment method").check()
    page.get_by_role("button", name="Downgrade now").click()
    # The reason is required: the browser won't submit without one.
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")
    assert _audit(env, shopper.id) == []
    page.get_by_label("Reason", exact=True).first.fill("Customer asked on chat: Standard is more than they need")
    page.get_by_role("button", name="Downgrade now").click()

    expect(flash(page)).to_have_text("Downgraded to Basic (monthly) now.")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Basic")
    with env.ctx.db.transaction(readonly=True) as session:
        refunds = list(session.scalars(select(Refund).where(Refund.customer_id == shopper.id)))
    assert [(r.amount, r.status) for r in refunds] == [(1500, "succeeded")]
    assert _customer(env, shopper.id).balance == 0  # refunded, not kept as balance

    (record,) = _audit(env, shopper.id)
    assert (record.actor, record.action, record.outcome) == (username, "subscription.downgrade_now", "succeeded")
    assert record.reason == "Customer asked on chat: Standard is more than they need"
    row = page.locator("#audit").get_by_test_id("audit-row").first
    expect(row).to_contain_text(username)
    expect(row).to_contain_text("Immediate downgrade from Standard (monthly) to Basic (monthly); unused value: refund")
    expect(row).to_contain_text("Standard is more than they need")
    expect(row).to_contain_text("succeeded")


def test_an_immediate_downgrade_keeps_the_unused_value_as_account_balance_by_default(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.advance(utc(2026, 2, 14, 10))
    sign_in(page, *make_staff(env))
    page.goto(f"/console/customers/{shopper.id}")
    expect(page.get_by_role("radio", name="Account balance")).to_be_checked()
    page.get_by_label("New plan").select_option(label="Basic (monthly)")
    page.locator("#downgrade-reason").fill("Goodwill after an outage")
    page.get_by_role("button", name="Downgrade now").click()
    expect(flash(page)).to_have_text("Downgraded to Basic (monthly) now.")
    # $15.00 unused, less the $9.00 Basic charge paid from it: $6.00 stays on the account.
    expect(page.get_by_test_id("account-balance")).to_have_text("$6.00")


@both_backends
def test_refunds_show_the_eligibility_and_a_full_refund_ends_the_subscription(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.advance(utc(2026, 2, 1, 10))  # one day after the first purchase: inside the 3-day window
    sign_in(page, *make_staff(env))
    page.goto(f"/console/customers/{shopper.id}")
    page.locator("#invoices").get_by_role("link", name="Refund").click()

    expect(page.get_by_test_id("eligibility")).to_have_text(
        "Eligible: First purchase within 3 days with 0 credits spent.")
    expect(page.get_by_test_id("refundable")).to_have_text("$30.00")
    shot(page, "console-refund")
    page.get_by_label("Reason").fill("Changed their mind the next day")
    page.get_by_role("button", name="Refund").click()

    expect(flash(page)).to_contain_text("Refunded $30.00 on invoice")
    expect(page.get_by_test_id("status")).to_have_text("Free")
    with env.ctx.db.transaction(readonly=True) as session:
        sub = session.scalar(select(Subscription).where(Subscription.customer_id == shopper.id))
    assert (sub.status, sub.ended_reason) == ("ended", "refunded")
    (record,) = _audit(env, shopper.id)
    assert record.action == "invoice.refund" and record.details["policy_eligible"] is True


def test_a_refund_outside_the_policy_says_so_and_can_still_be_made_in_part(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.advance(utc(2026, 2, 5, 10))  # five days: past the 3-day window
    sign_in(page, *make_staff(env))
    page.goto(f"/console/customers/{shopper.id}")
    page.locator("#invoices").get_by_role("link", name="Refund").click()
    expect(page.get_by_test_id("eligibility")).to_contain_text("Not eligible under the policy: The 3-day refund "
                                                               "window ended on 2026-02-03 10:00 UTC.")
    page.get_by_label("Amount").fill("45.00")
    page.get_by_label("Reason").fill("Duplicate charge reported by the bank")
    page.get_by_role("button", name="Refund").click()
    expect(flash(page)).to_have_text("Amount 4500 exceeds the 3000 that can still be refunded.")
    page.get_by_label("Amount").fill("5.50")
    page.get_by_label("Reason").fill("Goodwill for a slow week")
    page.get_by_role("button", name="Refund").click()
    expect(flash(page)).to_contain_text("Refunded $5.50 on invoice")
    expect(page.get_by_test_id("status")).to_have_text("Active")  # a partial refund takes nothing back
    records = _audit(env, shopper.id)
    assert [(r.outcome, r.details["amount"]) for r in records] == [("failed", 4500), ("succeeded", 550)]
    expect(page.locator("#audit").get_by_test_id("audit-row")).to_have_count(2)


@both_backends
def test_promo_credits_are_granted_with_a_reason_and_listed_in_the_audit_log(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    username, password = make_staff(env, role="admin")
    sign_in(page, username, password)
    page.goto(f"/console/customers/{shopper.id}")
    page.get_by_role("textbox", name="Credits").fill("500")
    page.get_by_label("Expires after (days)").fill("30")
    page.locator("#promo-reason").fill("Beta tester thank-you")
    page.get_by_role("button", name="Grant credits").click()
    expect(flash(page)).to_have_text("Granted 500 promotional credits.")
    expect(page.get_by_test_id("balance-promo")).to_contain_text("500")

    page.get_by_role("link", name="Audit log").click()
    row = page.get_by_test_id("audit-row").first
    expect(row).to_contain_text(username)
    expect(row).to_contain_text("Granted 500 promotional credits, expiring in 30 days")
    expect(row).to_contain_text("Beta tester thank-you")
    shot(page, "console-audit")

    # The customer sees them on their page.
    customer_page = page.context.browser.new_context(base_url=page.url.split("/console")[0]).new_page()
    shopper.open(customer_page)
    expect(customer_page.get_by_test_id("balance-promo")).to_contain_text("500")
    expect(customer_page.get_by_test_id("balance-promo")).to_contain_text("Some expire on 2 Mar 2026")
    customer_page.context.close()


def test_an_admin_adds_a_console_user_who_can_then_sign_in(env: WebEnv, page: Page, browser):
    admin, password = make_staff(env, role="admin")
    sign_in(page, admin, password)
    page.get_by_role("link", name="Team").click()
    page.get_by_label("Username").fill(f"{admin}-new")
    page.get_by_label("Password", exact=True).fill("a long enough password")
    page.get_by_label("Role").select_option("support")
    page.locator("#new-reason").fill("New hire on the support team")
    page.get_by_role("button", name="Add user").click()
    expect(flash(page)).to_have_text(f"Added {admin}-new as support.")
    shot(page, "console-team")

    other = browser.new_context(base_url=env.base_url)
    try:
        newcomer = other.new_page()
        sign_in(newcomer, f"{admin}-new", "a long enough password")

        # Disabled by the admin: signed out at the next request, and can't sign in again.
        page.get_by_label(f"Reason for disabling {admin}-new").fill("Left the team")
        page.get_by_role("button", name=f"Disable {admin}-new").click()
        expect(flash(page)).to_have_text("The user can no longer sign in.")
        newcomer.reload()
        expect(newcomer.get_by_role("heading", name="Sign in")).to_be_visible()
        newcomer.get_by_label("Username").fill(f"{admin}-new")
        newcomer.get_by_label("Password").fill("a long enough password")
        newcomer.get_by_role("button", name="Sign in").click()
        expect(flash(newcomer)).to_have_text("Wrong username or password.")
    finally:
        other.close()
    actions = [row.action for row in _audit_all(env) if row.actor == admin]
    assert actions == ["console.user_create", "console.user_disable"]
