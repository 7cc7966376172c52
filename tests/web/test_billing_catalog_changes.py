"""The billing page and the console after the catalog changed, in Chromium: the next renewal
shows the price the customer was sold, not the catalog's new one; a plan or bundle taken off
sale is offered to nobody (a link to it is refused); the console shows the price as sold and a
moved price."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_kit import WebEnv, make_staff, sign_in, utc

from creditflow.catalog.loader import default_catalog_path, load_catalog_text
from creditflow.subscription.models import Subscription
from creditflow.subscription.reprice import MOVED, move_to_price, price_move

SAMPLE = Path(default_catalog_path()).read_text(encoding="utf-8")
CHANGED = (SAMPLE.replace("prices: {monthly: 3000,", "prices: {monthly: 3500,")
           .replace("    name: Basic\n", "    name: Basic\n    on_sale: false\n")
           .replace('credits: "1000", price: 1000}', 'credits: "1000", price: 1000, on_sale: false}'))


@contextmanager
def catalog(env: WebEnv, text: str):
    """The server runs on `text` while inside (the session's other tests get the sample back)."""
    before = env.ctx.catalog
    env.ctx.catalog = load_catalog_text(text)
    try:
        yield
    finally:
        env.ctx.catalog = before


def test_the_page_keeps_the_price_as_sold_and_hides_what_is_off_sale(env: WebEnv, page: Page):
    assert CHANGED.count("on_sale: false") == 2 and "monthly: 3500," in CHANGED
    shopper = env.shopper(utc(2026, 1, 31, 10))  # Standard monthly, sold at $30
    with catalog(env, CHANGED):
        shopper.open(page)
        expect(page.get_by_test_id("next-renewal")).to_have_text("28 Feb 2026 · $30.00")
        expect(page.get_by_test_id("card-standard-monthly")).to_contain_text("$30.00")
        expect(page.get_by_test_id("card-basic-monthly")).to_have_count(0)
        expect(page.get_by_test_id("card-basic-yearly")).to_have_count(0)
        expect(page.locator("article.plan-card")).to_have_count(9)  # Basic's 3 cards are gone

        page.get_by_role("link", name="Buy credits").click()
        expect(page.get_by_role("radio", name="5,000 credits")).to_be_checked()
        expect(page.get_by_role("radio", name="1,000 credits")).to_have_count(0)
        # A link to what is off sale (an old bookmark) is refused, nothing charged.
        page.goto("/billing/credits/buy/review?bundle=credits_1000")
        expect(page.get_by_text("no longer sold")).to_be_visible()

        # A newcomer sees the new price.
        newcomer = env.shopper(utc(2026, 1, 31, 10), plan=None)
        newcomer.open(page)
        expect(page.get_by_test_id("card-standard-monthly")).to_contain_text("$35.00")
        expect(page.get_by_test_id("card-basic-monthly")).to_have_count(0)


def test_the_console_shows_the_price_as_sold_and_a_moved_price(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    with catalog(env, CHANGED):
        with env.ctx.db.transaction() as session:
            sub_id = session.scalar(select(Subscription.id).where(Subscription.customer_id == shopper.id))
            assert move_to_price(env.ctx, session, sub_id, price_move(env.ctx.catalog, "standard", "monthly",
                                                                      None, 30)) == MOVED
        username, password = make_staff(env)
        sign_in(page, username, password)
        page.goto(f"/console/customers/{shopper.id}")
        # 30 days' notice from 31 January: the 28 February renewal is too soon, 31 March is moved.
        expect(page.get_by_test_id("sold-price")).to_have_text(
            "$30.00 / monthly; $35.00 from the renewal on 31 Mar 2026")
        notice = page.get_by_test_id("event-line").filter(has_text="subscription.price_changing")
        expect(notice).to_contain_text("old_price: $30.00, new_price: $35.00")
