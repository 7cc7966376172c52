"""Invoices and the credit history, and what keeps one customer's page to that customer:
the one-time, five-minute portal link, the session bound to one customer, CSRF tokens."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_kit import WebEnv, both_backends, shot, utc

from creditflow.credits.spend import spend_credits
from creditflow.purchase.top_up import purchase_top_up
from creditflow.invoicing.models import Invoice
from creditflow.subscription.change import preview_change
from creditflow.subscription.models import Subscription


def _invoices(env: WebEnv, customer_id: str) -> list[Invoice]:
    with env.ctx.db.transaction(readonly=True) as session:
        return list(session.scalars(select(Invoice).where(Invoice.customer_id == customer_id)
                                    .order_by(Invoice.number)))


def _sub(env: WebEnv, customer_id: str) -> Subscription:
    with env.ctx.db.transaction(readonly=True) as session:
        return session.scalar(select(Subscription).where(Subscription.customer_id == customer_id))


@both_backends
def test_an_invoice_is_viewed_and_downloaded_as_a_pdf(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    purchase_top_up(env.ctx, shopper.id, bundle="credits_5000")
    first, top_up = _invoices(env, shopper.id)
    shopper.open(page)

    rows = page.locator("#invoices tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"{top_up.number:06d}")
    expect(rows.nth(1)).to_contain_text("$30.00")
    page.get_by_role("link", name=f"View invoice {first.number:06d}").click()
    expect(page.get_by_role("heading", name=f"Invoice {first.number:06d}")).to_be_visible()
    expect(page.get_by_text("Subscription: Standard plan, monthly")).to_be_visible()
    expect(page.get_by_test_id("invoice-total")).to_have_text("$30.00")
    expect(page.get_by_text("31 Jan 2026 – 28 Feb 2026").first).to_be_visible()
    shot(page, "invoice")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"invoice-{first.number:06d}.pdf"
    pdf = open(download.path(), "rb").read()
    assert pdf.startswith(b"%PDF-")
    assert f"/Title (Invoice {first.number:06d})".encode() in pdf


@both_backends
def test_another_customers_invoice_and_quote_answer_404(env: WebEnv, page: Page):
    mine, theirs = env.shopper(utc(2026, 1, 31, 10)), env.shopper(utc(2026, 1, 31, 10))
    (their_invoice,) = _invoices(env, theirs.id)
    their_sub = _sub(env, theirs.id).id
    their_quote = env.ctx.db.run(lambda session: preview_change(env.ctx, session, their_sub, plan="ultimate",
                                                                term="monthly"))
    (my_invoice,) = _invoices(env, mine.id)
    mine.open(page)

    assert page.goto(f"/billing/invoices/{my_invoice.id}").status == 200
    response = page.goto(f"/billing/invoices/{their_invoice.id}")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_text("There's nothing here, or it isn't yours to see.")).to_be_visible()
    shot(page, "not-found")
    assert page.goto(f"/billing/invoices/{their_invoice.id}/pdf").status == 404
    assert page.goto("/billing/invoices/inv_made_up/pdf").status == 404
    assert page.goto(f"/billing/change/review/{their_quote.id}").status == 404
    # Confirming their quote from my session is refused just the same, and changes nothing.
    csrf = page.goto("/billing").ok and page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post("/billing/change/confirm", form={"csrf_token": csrf, "quote": their_quote.id})
    assert response.status == 404
    assert _sub(env, theirs.id).plan == "standard"


@both_backends
def test_the_portal_link_works_once_and_for_five_minutes(env: WebEnv, page: Page, browser):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    url = shopper.portal_url()
    page.goto(url)
    expect(page.get_by_role("heading", name="Billing and subscription")).to_be_visible()
    assert "/session/" not in page.url  # the token doesn't stay in the address bar

    other = browser.new_context(base_url=env.base_url)
    try:
        again = other.new_page()
        assert again.goto(url).status == 404
        expect(again.get_by_text("This link has expired or has already been used.")).to_be_visible()
        shot(again, "link-used")

        late = shopper.portal_url()
        env.move_wall(timedelta(minutes=5, seconds=1))
        assert again.goto(late).status == 404

        fresh = shopper.portal_url()
        session_id, _, signature = fresh.rpartition("/")[2].partition(".")
        forged = fresh.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
        assert again.goto(forged).status == 404
        assert again.goto(fresh).ok  # the genuine one still works (the forgery didn't use it up)
        expect(again.get_by_role("heading", name="Billing and subscription")).to_be_visible()

        # No session at all: the page says how to get back in.
        stranger = browser.new_context(base_url=env.base_url).new_page()
        assert stranger.goto("/billing").status == 401
        expect(stranger.get_by_text("Please open the billing page again from the app.")).to_be_visible()
        shot(stranger, "session-ended")
        stranger.context.close()
    finally:
        other.close()


def test_every_form_needs_the_sessions_csrf_token(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    shopper.open(page)
    for form in page.locator("form[method=post]").all():
        assert form.locator("input[name=csrf_token]").get_attribute("value")

    for data in ({}, {"csrf_token": "forged"}):
        response = page.request.post("/billing/cancel", form=data)
        assert response.status == 403
        assert "This form has expired" in response.text()
    assert _sub(env, shopper.id).cancel_at_period_end is False

    # A session for one customer can't be turned into another's: the cookie is signed.
    cookie = next(c for c in page.context.cookies() if c["name"] == "cf_billing")
    page.context.add_cookies([{**cookie, "value": cookie["value"][:-2] + "xx"}])
    assert page.goto("/billing").status == 401


def test_the_credit_history_is_paged(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    for n in range(24):
        spend_credits(env.ctx, shopper.id, amount="12.5", feature="standard_models", reference=f"job-{n:02d}")
    shopper.open(page)

    recent = page.locator("#history tbody tr")
    expect(recent).to_have_count(5)
    expect(recent.first).to_contain_text("Spent from plan credits")
    expect(recent.first).to_contain_text("job-23")
    expect(recent.first).to_contain_text("-12.5")
    expect(page.get_by_test_id("total-credits")).to_have_text("7,700")

    page.get_by_role("link", name="Full credit history").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text("job-23")
    shot(page, "credit-history")
    page.get_by_role("link", name="Older activity").click()
    expect(rows).to_have_count(5)  # 4 more spends and the grant
    expect(rows.last).to_contain_text("Plan credits granted")
    expect(rows.last).to_contain_text("+8,000")
    expect(page.get_by_role("link", name="Older activity")).to_have_count(0)
    page.get_by_role("link", name="Newest").click()
    expect(rows.first).to_contain_text("job-23")


def test_all_invoices_are_listed_newest_first_and_paged(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10))
    for n in range(21):
        purchase_top_up(env.ctx, shopper.id, bundle="credits_1000", reference=f"pack-{n}")
    numbers = [invoice.number for invoice in _invoices(env, shopper.id)]
    shopper.open(page)
    expect(page.locator("#invoices tbody tr")).to_have_count(5)
    page.get_by_role("link", name="All invoices").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text(f"{numbers[-1]:06d}")
    shot(page, "invoices")
    page.get_by_role("link", name="Older invoices").click()
    expect(rows).to_have_count(2)
    expect(rows.last).to_contain_text(f"{numbers[0]:06d}")
    expect(rows.last).to_contain_text("$30.00")
