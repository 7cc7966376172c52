"""An invoice as a PDF, drawn with fpdf2's built-in Helvetica.

The built-in fonts cover Latin-1 only; anything outside it (a customer's name in another
script, say) is transliterated or replaced rather than breaking the download.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from fpdf import FPDF

from creditflow.kit.money import format_money

STATUS_WORDS = {"paid": "PAID", "open": "OPEN", "void": "VOID", "refunded": "REFUNDED"}
PURPOSES = {"subscription_create": "Subscription", "renewal": "Renewal", "plan_change": "Plan change",
            "top_up": "Credit top-up"}


def invoice_filename(invoice) -> str:
    return f"invoice-{invoice.number:06d}.pdf"


def _latin1(text: str) -> str:
    text = text.replace("€", "EUR ").replace("\u2013", "-").replace("\u2014", "-").replace("\u2019", "'")
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        decomposed = unicodedata.normalize("NFKD", text)
        return "".join(c if ord(c) < 256 else "?" for c in decomposed if not unicodedata.combining(c))


def _money(amount: int, currency: str) -> str:
    return _latin1(format_money(amount, currency))


def _date(dt: datetime | None) -> str:
    return "" if dt is None else f"{dt.day} {dt:%b %Y}"


def _party_lines(party: dict | None) -> list[str]:
    """Name, address, country and tax id of a seller or a bill-to, as printed."""
    if not party:
        return []
    lines = [party.get("name") or ""]
    address = party.get("address")
    if isinstance(address, str):
        lines.append(address)
    elif address:
        lines.append(", ".join(part for part in (address.get("line1"), address.get("line2")) if part))
        lines.append(" ".join(part for part in (address.get("postal_code"), address.get("city")) if part)
                     + (f", {address['state']}" if address.get("state") else ""))
    if party.get("country") and not isinstance(address, str):
        lines.append(party["country"])
    if party.get("tax_id"):
        lines.append(f"Tax id {party['tax_id']}")
    return [line for line in lines if line]


def render_invoice_pdf(invoice, customer, *, title: str | None = None, seller: str = "creditflow") -> bytes:
    """The invoice as issued: seller, bill-to, number, dates, lines, discount, tax per rate,
    totals and payment status, as PDF bytes.

    `invoice` needs its lines loaded; dates are shown in UTC. The seller and the bill-to are
    the invoice's own copies; invoices issued before they were kept show `seller` and the
    customer's contact instead."""
    issuer = (invoice.seller or {}).get("name") or seller
    pdf = FPDF(format="A4")
    pdf.set_title(f"Invoice {invoice.number:06d}")
    pdf.set_author(_latin1(issuer))
    pdf.set_creator("creditflow")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(width / 2, 10, _latin1(issuer))
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(width / 2, 10, f"Invoice {invoice.number:06d}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(width, 6, STATUS_WORDS.get(invoice.status, invoice.status.upper()), align="R",
             new_x="LMARGIN", new_y="NEXT")
    for line in _party_lines(invoice.seller)[1:]:
        pdf.cell(width, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    pdf.set_text_color(20, 20, 20)
    billed = _party_lines(invoice.bill_to) or [customer.name or ""]
    billed += [customer.email, f"Customer {customer.id}"]
    details = [f"Issued {_date(invoice.created_at)}"]
    if invoice.paid_at:
        details.append(f"Paid {_date(invoice.paid_at)}")
    if invoice.period_start and invoice.period_end:
        details.append(f"Period {_date(invoice.period_start)} - {_date(invoice.period_end)}")
    details.append(f"Reference {invoice.id}")
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(width / 2, 6, "Billed to")
    pdf.cell(width / 2, 6, "Details", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for i in range(max(len(billed), len(details))):
        left = billed[i] if i < len(billed) else ""
        right = details[i] if i < len(details) else ""
        pdf.cell(width / 2, 5.5, _latin1(left))
        pdf.cell(width / 2, 5.5, _latin1(right), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    if title:
        pdf.set_font("Helvetica", "B", 12)
        pdf.multi_cell(width, 7, _latin1(title), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)

    # Lines
    pdf.set_font("Helvetica", "B", 10)
    pdf.set_fill_color(242, 243, 247)
    pdf.cell(width * 0.75, 8, "Description", fill=True)
    pdf.cell(width * 0.25, 8, "Amount", align="R", fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for line in invoice.lines:
        if line.kind in ("discount", "tax"):  # shown with the totals
            continue
        description = line.description
        if line.period_start and line.period_end:
            description += f" ({_date(line.period_start)} - {_date(line.period_end)})"
        y = pdf.get_y()
        pdf.multi_cell(width * 0.75, 7, _latin1(description), new_x="RIGHT", new_y="TOP")
        pdf.cell(width * 0.25, 7, _money(line.amount, invoice.currency), align="R")
        pdf.set_xy(pdf.l_margin, max(pdf.get_y(), y) + 7)
        pdf.set_draw_color(225, 227, 233)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(3)

    totals = [("Subtotal", invoice.subtotal)]
    totals += [(line.description, line.amount) for line in invoice.lines if line.kind == "discount"]
    taxes = [(line.description, line.amount) for line in invoice.lines if line.kind == "tax"]
    totals += taxes or [("Tax", invoice.tax)]
    totals.append(("Total", invoice.total))
    if invoice.balance_applied:
        totals.append(("Paid from account balance", -invoice.balance_applied))
    if invoice.amount_paid:
        totals.append(("Paid by card", -invoice.amount_paid))
    if invoice.amount_refunded:
        totals.append(("Refunded", invoice.amount_refunded))
    due = invoice.total - invoice.balance_applied - invoice.amount_paid if invoice.status == "open" else 0
    totals.append(("Amount due", max(due, 0)))
    for label, amount in totals:
        bold = label in ("Total", "Amount due")
        pdf.set_font("Helvetica", "B" if bold else "", 10)
        pdf.cell(width * 0.75, 7, label, align="R")
        pdf.cell(width * 0.25, 7, _money(amount, invoice.currency), align="R", new_x="LMARGIN", new_y="NEXT")

    pdf.ln(10)
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(120, 120, 120)
    pdf.multi_cell(width, 4.5, _latin1(
        f"{PURPOSES.get(invoice.purpose, invoice.purpose)} invoice. Amounts in {invoice.currency.upper()}. "
        "Dates in UTC."), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
