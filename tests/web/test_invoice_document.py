"""An invoice is a real invoice: seller, bill-to, tax per rate and totals, on its page and in its
PDF (rendered to an image here, and its text read back)."""

from __future__ import annotations

import io

import pdfplumber
from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_kit import WebEnv, shot, utc

from creditflow.customer.billing import update_billing_details
from creditflow.invoicing.models import Invoice

ADDRESS = {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117"}


def _set_details(env: WebEnv, customer_id: str, **details) -> None:
    with env.ctx.db.transaction() as session:
        update_billing_details(env.ctx, session, customer_id, details)


def _invoice(env: WebEnv, customer_id: str) -> Invoice:
    with env.ctx.db.transaction(readonly=True) as session:
        return session.scalars(select(Invoice).where(Invoice.customer_id == customer_id)
                               .order_by(Invoice.number.desc())).first()


def test_the_invoice_page_and_pdf_show_seller_bill_to_and_tax(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan=None, name="Ada Lovelace")
    _set_details(env, shopper.id, name="Ada GmbH", country="DE", address=ADDRESS)
    shopper.subscribe("standard", "monthly")
    invoice = _invoice(env, shopper.id)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (3000, 570, 3570)
    _set_details(env, shopper.id, name="Renamed Later GmbH")  # the invoice keeps what it was issued with

    shopper.open(page)
    page.get_by_role("link", name=f"View invoice {invoice.number:06d}").click()
    expect(page.get_by_test_id("invoice-seller")).to_contain_text("Example AI Ltd")
    expect(page.get_by_test_id("invoice-seller")).to_contain_text("Tax id IE6388047V")
    bill_to = page.get_by_test_id("invoice-bill-to")
    expect(bill_to).to_contain_text("Ada GmbH")
    expect(bill_to).to_contain_text("10117 Berlin")
    expect(bill_to).not_to_contain_text("Renamed Later")
    expect(page.get_by_test_id("invoice-tax")).to_have_text("Tax (19%, DE)$5.70")
    expect(page.get_by_test_id("invoice-total")).to_have_text("$35.70")
    shot(page, "invoice-with-tax")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    pdf_bytes = open(download_info.value.path(), "rb").read()
    with pdfplumber.open(io.BytesIO(pdf_bytes)) as pdf:
        [sheet] = pdf.pages
        image = sheet.to_image(resolution=72).original  # drawn by PDFium, as a viewer would
        text = sheet.extract_text()
    # Something is drawn: far from a blank page.
    dark = sum(image.convert("L").histogram()[:128])  # pixels darker than mid-grey
    assert dark > 2000, dark
    for expected in ("Example AI Ltd", "Tax id IE6388047V", "Billed to", "Ada GmbH", "Unter den Linden 1",
                     "10117 Berlin", "DE", f"Invoice {invoice.number:06d}", "PAID", "Standard plan, monthly",
                     "Subtotal $30.00", "Tax (19%, DE) $5.70", "Total $35.70", "Paid by card -$35.70"):
        assert expected in text, (expected, text)
    assert "Renamed Later" not in text


def test_a_reverse_charged_invoice_says_so(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan=None)
    _set_details(env, shopper.id, name="Lumière SARL", country="FR", tax_id="FR40303265045")
    shopper.subscribe("basic", "monthly")
    invoice = _invoice(env, shopper.id)
    shopper.open(page)
    page.goto(f"/billing/invoices/{invoice.id}")
    expect(page.get_by_test_id("invoice-tax")).to_contain_text("Reverse charge")
    expect(page.get_by_test_id("invoice-bill-to")).to_contain_text("Tax id FR40303265045")
    expect(page.get_by_test_id("invoice-total")).to_have_text("$9.00")


def test_the_console_shows_the_card_billing_details_and_tax(env: WebEnv, page: Page):
    from web_kit import make_staff, sign_in

    shopper = env.shopper(utc(2026, 1, 31, 10), plan=None)
    _set_details(env, shopper.id, country="DE", tax_id="DE136695976", address=ADDRESS)
    sign_in(page, *make_staff(env))
    page.goto(f"/console/customers/{shopper.id}")
    expect(page.get_by_test_id("card")).to_have_text("Visa ending 4242, expires 12/2034")
    details = page.get_by_test_id("billing-details")
    expect(details).to_contain_text("Unter den Linden 1, 10117 Berlin")
    expect(details).to_contain_text("DE136695976")
    expect(page.get_by_test_id("tax-treatment")).to_have_text("Reverse charge (DE)")
    _set_details(env, shopper.id, tax_id=None)
    page.reload()
    expect(page.get_by_test_id("tax-treatment")).to_have_text("19% (DE)")


def test_the_review_screens_show_the_tax_and_charge_the_total(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan=None)
    _set_details(env, shopper.id, country="GB")
    shopper.open(page)
    page.goto("/billing/subscribe?plan=basic&term=monthly")
    expect(page.get_by_test_id("amount-due")).to_have_text("$10.80")
    expect(page.get_by_test_id("tax-line")).to_have_text("Price $9.00; Tax (20%, GB): $1.80.")
    page.get_by_role("button", name="Confirm and pay $10.80").click()
    expect(page.locator(".flash")).to_be_visible()
    assert _invoice(env, shopper.id).amount_paid == 1080

    page.goto("/billing/credits/buy/review?bundle=credits_1000")
    expect(page.get_by_test_id("tax-line")).to_contain_text("$2.00")
    expect(page.get_by_test_id("amount-due")).to_have_text("$12.00")
    page.get_by_role("button", name="Confirm and pay $12.00").click()
    expect(page.locator(".flash")).to_be_visible()
    assert _invoice(env, shopper.id).amount_paid == 1200


def test_the_next_renewal_shows_its_amount_with_tax(env: WebEnv, page: Page):
    shopper = env.shopper(utc(2026, 1, 31, 10), plan=None)
    _set_details(env, shopper.id, country="IE")
    shopper.subscribe("standard", "monthly")
    shopper.open(page)
    expect(page.get_by_test_id("next-renewal")).to_contain_text("$36.90")  # 3000 and 23%
