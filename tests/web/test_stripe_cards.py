"""The billing page with the Stripe gateway, against localstripe and the Stripe.js it serves
(`<api base>/js.stripe.com/v3/`), in Chromium: a card is added with a SetupIntent confirmed in
the browser (creditflow never sees the number), then a purchase whose card asks for 3-D Secure is
authenticated with Stripe.js's confirmCardPayment and completes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import requests
import stripe
from playwright.sync_api import Page, expect
from web_kit import SECRET_KEY, SERVER_KEY, ServerThread, WebEnv, flash, utc

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.invoicing.models import Invoice
from creditflow.kit.clock import FixedClock
from creditflow.kit.db import Database
from creditflow.migrations.runner import upgrade
from creditflow.payment.stripe_gateway import StripeGateway
from creditflow.wiring import stripe_customer_of_attempt

API_KEY = "sk_test_creditflow_web"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory):
    """`python -m localstripe` on a free port, for this module."""
    workdir = tmp_path_factory.mktemp("localstripe-web")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(workdir / "localstripe.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
                                   stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/v1/customers", headers={"Authorization": f"Bearer {API_KEY}"},
                                timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"localstripe did not start: {(workdir / 'localstripe.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def stripe_env(tmp_path_factory, localstripe):
    """The real app with the Stripe gateway pointed at localstripe."""
    url = f"sqlite:///{tmp_path_factory.mktemp('web-stripe') / 'web.db'}"
    upgrade(url)
    database = Database(url)
    gateway = StripeGateway(API_KEY, api_base=localstripe, customer_for_key=stripe_customer_of_attempt(database),
                            publishable_key="pk_test_creditflow_web")
    wall = FixedClock(utc(2026, 1, 31, 10))
    ctx = Context(db=database, catalog=load_catalog(), gateway=gateway, clock=wall)
    settings = replace(Settings(), secret_key=SECRET_KEY, test_clocks=True, bootstrap_keys=f"{SERVER_KEY}:server")
    try:
        with ServerThread(create_app(ctx, settings)) as server, server.api_client() as http:
            yield WebEnv(ctx=ctx, base_url=server.url, http=http, wall=wall)
    finally:
        database.dispose()


@pytest.fixture
def stripe_page(browser, stripe_env):
    context = browser.new_context(base_url=stripe_env.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def _fill_card(page: Page, number: str) -> None:
    """localstripe's card Element: plain inputs named by their placeholders."""
    element = page.locator("#card-element")
    element.get_by_placeholder("number").fill(number)
    element.get_by_placeholder("exp_month").fill("12")
    element.get_by_placeholder("exp_year").fill("34")
    element.get_by_placeholder("cvc").fill("123")
    element.get_by_placeholder("postal_code").fill("10115")


def test_a_card_is_added_with_stripe_js_and_a_3d_secure_upgrade_completes(stripe_env: WebEnv, stripe_page: Page):
    page = stripe_page
    shopper = stripe_env.shopper(plan=None, payment_method=None)
    shopper.open(page)
    page.get_by_role("link", name="Add a card").click()
    expect(page.locator("#card-element").get_by_placeholder("number")).to_be_visible()  # Stripe.js loaded
    _fill_card(page, "4242424242424242")
    page.get_by_role("button", name="Save card").click()
    expect(flash(page)).to_have_text("Your card ending in 4242 is saved.")
    expect(page.get_by_test_id("payment-method")).to_contain_text("Visa ending in 4242")

    # The card reached creditflow as a PaymentMethod of the customer's Stripe customer, never as a number.
    admin = stripe.StripeClient(API_KEY, base_addresses={"api": stripe_env.ctx.gateway.api_origin})
    with stripe_env.ctx.db.transaction(readonly=True) as session:
        from creditflow.customer.models import Customer
        customer = session.get(Customer, shopper.id)
        method, stripe_customer = customer.payment_method, customer.gateway_customer_id
    assert method.startswith("pm_")
    assert admin.v1.payment_methods.retrieve(method).card.last4 == "4242"

    # Subscribe with it (a plain on-session charge).
    page.get_by_role("link", name="Upgrade to Standard (monthly)").click()
    page.get_by_role("button", name="Confirm and pay $30.00").click()
    expect(flash(page)).to_contain_text("Welcome to Standard!")

    # Replace it with a card that asks for 3-D Secure: the SetupIntent is authenticated in the browser.
    page.get_by_role("link", name="Replace card").click()
    _fill_card(page, "4000002500003155")
    page.get_by_role("button", name="Save card").click()
    page.get_by_role("button", name="Complete authentication").click()
    expect(page.get_by_test_id("payment-method")).to_contain_text("Visa ending in 3155")

    # An immediate upgrade: the PaymentIntent waits for the cardholder; nothing changes before.
    page.get_by_role("link", name="Upgrade to Ultimate (monthly)").click()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Confirm and pay $20.00").click()
    expect(page.get_by_role("heading", name="Confirm your payment")).to_be_visible()
    with stripe_env.ctx.db.transaction(readonly=True) as session:
        invoice = session.query(Invoice).filter_by(customer_id=shopper.id, purpose="plan_change").one()
        assert invoice.status == "open"
    page.get_by_role("button", name="Authenticate payment").click()
    page.get_by_role("button", name="Complete authentication").click()  # localstripe's 3-D Secure step
    expect(flash(page)).to_contain_text("Payment received. You're now on Ultimate (monthly). We charged $20.00.")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Ultimate")
    intents = [i for i in admin.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
               if i.customer == stripe_customer]
    assert sorted((i.amount, i.status) for i in intents) == [(2000, "succeeded"), (3000, "succeeded")]


def test_a_failed_3d_secure_on_stripe_changes_nothing(stripe_env: WebEnv, stripe_page: Page):
    page = stripe_page
    shopper = stripe_env.shopper(plan=None, payment_method=None)
    shopper.open(page)
    page.get_by_role("link", name="Add a card").click()
    _fill_card(page, "4000002500003155")
    page.get_by_role("button", name="Save card").click()
    page.get_by_role("button", name="Complete authentication").click()
    expect(flash(page)).to_have_text("Your card ending in 3155 is saved.")

    page.get_by_role("link", name="Upgrade to Basic (monthly)").click()
    page.get_by_role("button", name="Confirm and pay $9.00").click()
    page.get_by_role("button", name="Authenticate payment").click()
    page.get_by_role("button", name="Fail authentication").click()
    expect(flash(page)).to_contain_text("wasn't authenticated, so nothing was charged and nothing changed")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Free")
    expect(page.get_by_test_id("payment-waiting")).to_contain_text("is not paid yet")
    with stripe_env.ctx.db.transaction(readonly=True) as session:
        invoice = session.query(Invoice).filter_by(customer_id=shopper.id, purpose="subscription_create").one()
        assert invoice.status == "open"


def test_a_payment_authenticated_elsewhere_is_recorded_when_the_page_is_opened_again(
        stripe_env: WebEnv, stripe_page: Page, localstripe):
    page = stripe_page
    shopper = stripe_env.shopper(plan=None, payment_method=None)
    shopper.open(page)
    page.get_by_role("link", name="Add a card").click()
    _fill_card(page, "4000002500003155")
    page.get_by_role("button", name="Save card").click()
    page.get_by_role("button", name="Complete authentication").click()
    expect(flash(page)).to_have_text("Your card ending in 3155 is saved.")
    page.get_by_role("link", name="Upgrade to Basic (monthly)").click()
    page.get_by_role("button", name="Confirm and pay $9.00").click()
    secret = page.locator("#stripe-authenticate-form").get_attribute("data-secret")

    # The cardholder completes 3-D Secure, but this page never hears of it (a closed tab)...
    intent = secret.split("_secret_")[0]
    answer = requests.post(f"{localstripe}/v1/payment_intents/{intent}/_authenticate?success=true",
                           json={"key": "pk_test_creditflow_web", "client_secret": secret}, timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    # ...so nothing is granted yet; opening the payment page again asks Stripe and completes it, once.
    with stripe_env.ctx.db.transaction(readonly=True) as session:
        invoice = session.query(Invoice).filter_by(customer_id=shopper.id, purpose="subscription_create").one()
        assert invoice.status == "open"
    page.reload()
    expect(flash(page)).to_have_text("Payment received. Welcome to Basic! We charged $9.00.")
    expect(page.get_by_test_id("current-plan-name")).to_have_text("Basic")
