"""Cards, 3-D Secure and billing details on the billing page, in Chromium, with the sandbox
gateway: adding and replacing the card, paying without a card on file, an upgrade whose card asks
for authentication (completed, and abandoned then paid later), a past-due customer fixing the
card, a renewal that needs authentication, and the billing details form."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from web_kit import WebEnv, both_backends, flash, shot, utc

from creditflow.invoicing.models import Invoice
from creditflow.payment.models import PaymentAttempt
from creditflow.subscription.models import Subscription

# Customers whose dates don't matter start before the suite's usual 31 January, so that they
# don't crowd the console's newest customers in other tests.
EARLIER = utc(2026, 1, 10, 10)


def _add_card(page: Page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_role("button", name="Save card").click()


def _subscription(env: WebEnv, customer_id: str) -> Subscription:
    with env.ctx.db.transaction(readonly=True) as session:
        sub = session.query(Subscription).filter(Subscription.customer_id == customer_id,
                                                 Subscription.status != "ended").one()
        session.expunge(sub)
        return sub


def _invoices(env: WebEnv, customer_id: str, purpose: str) -> list[tuple[str, str]]:
    with env.ctx.db.transaction(readonly=True) as session:
        return [(i.id, i.status) for i in session.query(Invoice).filter_by(customer_id=customer_id, purpose=purpose)
                .order_by(Invoice.number)]


def test_a_card_is_added_shown_and_replaced_with_the_sandbox_test_cards(env: WebEnv, page: Page):
    shopper = env.shopper(EARLIER, plan=None, payment_method=None)
    shopper.open(page)
    expect(page.get_by_test_id("payment-method")).to_contain_text("None on file")
    page.get_by_role("link", name="Add a card").click()
    expect(page.get_by_role("heading", name="Add a card")).to_be_visible()
    shot(page, "card-add")

    _add_card(page, "1234 5678 9012 3456")  # not a test card: said next to the field, nothing saved
    expect(page.get_by_test_id("card-error")).to_contain_text("4242 4242 4242 4242")
    expect(page.get_by_label("Card number")).to_have_attribute("aria-invalid", "true")

    _add_card(page, "4242 4242 4242 4242")
    expect(flash(page)).to_have_text("Your card ending in 4242 is saved.")
    expect(page.get_by_test_id("payment-method")).to_contain_text("Visa ending in 4242, expires 12/2034")

    page.get_by_role("link", name="Replace card").click()
    expect(page.get_by_test_id("card-on-file")).to_contain_text("Visa ending in 4242")
    _add_card(page, "4000 0025 0000 3155")
    expect(page.get_by_test_id("payment-method")).to_contain_text("Visa ending in 3155")
    response = env.http.get(f"/v1/customers/{shopper.id}/payment_method")
    assert response.json()["last4"] == "3155"


def test_paying_without_a_card_adds_one_first_then_comes_back_to_the_same_review(env: WebEnv, page: Page):
    shopper = env.shopper(EARLIER, plan=None, payment_method=None)
    shopper.open(page)
    page.get_by_role("link", name="Upgrade to Basic (monthly)").click()
    expect(page.get_by_role("button", name="Confirm and pay $9.00")).to_have_count(0)
    page.get_by_role("link", name="Add a card to pay $9.00").click()
    _add_card(page, "4242424242424242")
    expect(flash(page)).to_have_text("Your card ending in 4242 is saved.")
    expect(page).to_have_url(f"{env.base_url}/billing/subscribe?plan=basic&term=monthly")
    page.get_by_role("button", name="Confirm and pay $9.00").click()
    expect(flash(page)).to_contain_text("Welcome to Basic!")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Basic")


def _upgrade_to_ultimate(page: Page) -> None:
    page.get_by_role("link", name="Upgrade to Ultimate (monthly)").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Confirm and pay $35.00").click()


@both_backends
def test_an_upgrade_whose_card_asks_for_3d_secure_completes_once_authenticated(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.pay_with("pm_card_authenticate")
    shopper.advance(utc(2026, 2, 14, 10))
    shopper.open(page)
    _upgrade_to_ultimate(page)

    # The sandbox's own authentication step; nothing has changed yet.
    expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    expect(page.get_by_test_id("amount-due")).to_have_text("$35.00")
    assert _subscription(env, shopper.id).plan == "standard"
    [(invoice_id, status)] = _invoices(env, shopper.id, "plan_change")
    assert status == "open"
    shot(page, "authenticate-sandbox")

    page.get_by_role("button", name="Complete").click()
    expect(flash(page)).to_have_text("Payment received. You're now on Ultimate (monthly). We charged $35.00.")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Ultimate")
    expect(page.get_by_test_id("balance-subscription")).to_contain_text("16,000")
    assert _invoices(env, shopper.id, "plan_change") == [(invoice_id, "paid")]
    with env.ctx.db.transaction(readonly=True) as session:  # one charge, the one authenticated
        assert [a.status for a in session.query(PaymentAttempt).filter_by(invoice_id=invoice_id)] == ["succeeded"]


def test_an_abandoned_authentication_changes_nothing_and_the_invoice_is_paid_later(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.pay_with("pm_card_authenticate")
    shopper.advance(utc(2026, 2, 14, 10))
    before = _subscription(env, shopper.id)
    shopper.open(page)
    _upgrade_to_ultimate(page)
    expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()

    # Leaving the step: the page says the payment waits, nothing changed.
    page.goto("/billing")
    expect(page.get_by_test_id("payment-waiting")).to_contain_text("waits for your authentication")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")

    # Failing it: still nothing changed, the invoice stays open.
    page.get_by_role("link", name="Authenticate the payment").click()
    page.get_by_role("button", name="Fail").click()
    expect(flash(page)).to_contain_text("wasn't authenticated, so nothing was charged and nothing changed")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")
    expect(page.get_by_test_id("balance-subscription")).to_contain_text("8,000")
    after = _subscription(env, shopper.id)
    assert (after.plan, after.anchor, after.version) == (before.plan, before.anchor, before.version)
    [(invoice_id, status)] = _invoices(env, shopper.id, "plan_change")
    assert status == "open"

    # Later, from the page: pay it, authenticate, and the upgrade is made.
    page.get_by_test_id("payment-waiting").get_by_role("link", name="Pay now").click()
    page.get_by_role("button", name="Pay $35.00").click()
    page.get_by_role("button", name="Complete").click()
    expect(flash(page)).to_contain_text("You're now on Ultimate (monthly)")
    expect(page.get_by_test_id("payment-waiting")).to_have_count(0)
    assert _invoices(env, shopper.id, "plan_change") == [(invoice_id, "paid")]
    with env.ctx.db.transaction(readonly=True) as session:
        statuses = [a.status for a in session.query(PaymentAttempt).filter_by(invoice_id=invoice_id)
                    .order_by(PaymentAttempt.created_at)]
    assert statuses == ["failed", "succeeded"]


@both_backends
def test_a_past_due_customer_replaces_the_card_and_is_active_again_with_the_anchor_kept(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.pay_with("pm_card_declined")
    shopper.advance(utc(2026, 2, 28, 10))  # the renewal is declined
    shopper.open(page)
    expect(page.get_by_test_id("status")).to_have_text("Payment overdue")
    page.get_by_test_id("past-due-note").get_by_role("link", name="Replacing your card").click()
    _add_card(page, "4242 4242 4242 4242")
    expect(flash(page)).to_have_text(
        "Your card ending in 4242 is saved. Your overdue payment went through: your subscription is active again.")
    expect(page.get_by_test_id("status")).to_have_text("Active")
    # The anchor is kept: 31 January, so the term renewed on 28 February runs to 31 March.
    expect(page.get_by_test_id("next-renewal")).to_have_text("31 Mar 2026 · $30.00")
    assert _invoices(env, shopper.id, "renewal")[0][1] == "paid"


def test_a_renewal_that_needs_authentication_asks_for_it_on_the_page(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.pay_with("pm_card_authenticate")
    shopper.advance(utc(2026, 2, 28, 10))  # off-session: fails as authentication_required, dunned
    shopper.open(page)
    expect(page.get_by_test_id("status")).to_have_text("Payment overdue")
    banner = page.get_by_test_id("authentication-banner")
    expect(banner).to_contain_text("Your bank asks you to authenticate your renewal payment")
    expect(banner.get_by_role("link", name="change your card")).to_be_visible()
    banner.get_by_role("link", name="Authenticate the payment").click()
    page.get_by_role("button", name="Pay $30.00").click()
    page.get_by_role("button", name="Complete").click()  # on-session this time: 3-D Secure completes it
    expect(flash(page)).to_contain_text("Payment received: your subscription is active again.")
    expect(page.get_by_test_id("status")).to_have_text("Active")
    expect(page.get_by_test_id("next-renewal")).to_have_text("31 Mar 2026 · $30.00")
    expect(page.get_by_test_id("authentication-banner")).to_have_count(0)


def test_billing_details_are_edited_on_the_page_with_errors_next_to_the_field(env: WebEnv, page: Page):
    shopper = env.shopper(EARLIER, name="Ada Lovelace")
    shopper.open(page)
    page.get_by_role("link", name="Edit billing details").click()
    expect(page.get_by_label("Name")).to_have_value("Ada Lovelace")
    page.get_by_label("Address line 1").fill("1 Main Street")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Postal code").fill("10115")
    page.get_by_label("Country").fill("DE")
    page.get_by_label("Tax id (optional)").fill("DE000")
    page.get_by_role("button", name="Save billing details").click()
    expect(page.get_by_test_id("error-tax_id")).to_contain_text("not a valid DE VAT number")
    expect(page.get_by_label("City")).to_have_value("Berlin")  # what was typed stays
    shot(page, "billing-details-error")

    page.get_by_label("Tax id (optional)").fill("DE136695976")
    page.get_by_role("button", name="Save billing details").click()
    expect(flash(page)).to_contain_text("Your billing details are saved")
    expect(page.get_by_test_id("billing-details")).to_contain_text(
        "Ada Lovelace, 1 Main Street, 10115 Berlin, DE · Tax id DE136695976")
    customer = env.http.get(f"/v1/customers/{shopper.id}").json()
    assert customer["address"]["city"] == "Berlin" and customer["tax_id"] == "DE136695976"


def test_a_subscription_left_unauthenticated_can_be_cancelled_and_another_chosen(env: WebEnv, page: Page):
    shopper = env.shopper(EARLIER, plan=None, payment_method="pm_card_authenticate")
    shopper.open(page)
    page.get_by_role("link", name="Upgrade to Basic (monthly)").click()
    page.get_by_role("button", name="Confirm and pay $9.00").click()
    page.get_by_role("button", name="Fail").click()
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Free")
    page.get_by_test_id("payment-waiting").get_by_role("link", name="Pay now").click()
    page.get_by_role("button", name="Cancel this purchase").click()
    expect(flash(page)).to_have_text("The purchase is cancelled. Nothing was charged.")
    expect(page.get_by_test_id("payment-waiting")).to_have_count(0)
    assert [status for _, status in _invoices(env, shopper.id, "subscription_create")] == ["void"]

    page.get_by_role("link", name="Upgrade to Standard (monthly)").click()
    page.get_by_role("button", name="Confirm and pay $30.00").click()
    page.get_by_role("button", name="Complete").click()
    expect(flash(page)).to_have_text("Payment received. Welcome to Standard! We charged $30.00.")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Standard")


def test_a_top_up_whose_card_asks_for_3d_secure_grants_the_credits_once_authenticated(env: WebEnv, page: Page):
    shopper = env.shopper(EARLIER)
    shopper.pay_with("pm_card_authenticate")
    shopper.open(page)
    page.get_by_role("link", name="Buy credits").click()
    page.get_by_role("radio", name="1,000 credits").check()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Confirm and pay $10.00").click()
    expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    page.goto("/billing")
    expect(page.get_by_test_id("total-credits")).to_have_text("8,000")  # nothing granted before the money is in
    page.get_by_role("link", name="Authenticate the payment").click()
    page.get_by_role("button", name="Complete").click()
    expect(flash(page)).to_have_text("Payment received. Added 1,000 credits. We charged $10.00.")
    expect(page.get_by_test_id("balance-top_up")).to_contain_text("1,000")
    expect(page.get_by_test_id("total-credits")).to_have_text("9,000")
