"""Invoices, as pages and PDFs, and the credit history, paged."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.responses import Response

from creditflow.invoicing.pdf import invoice_filename, render_invoice_pdf
from creditflow.web import views
from creditflow.web.billing.pages import Visitor
from creditflow.web.rendering import HTMLErrorRoute

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)


def _paged(visit: Visitor, read, before: int | None, path: str, key) -> tuple[list, dict]:
    """One page of the customer's rows, newest first, from before `before` (`read` is asked for
    one more than a page, to know whether there are more): the rows, and what the pager shows
    (a link to the newest page unless on it, a link to the next page if there are more)."""
    with visit.ctx.db.transaction(readonly=True) as db:
        rows = read(db, visit.customer_id, limit=views.PAGE_SIZE + 1, before=before)
    pager = {"first_page": before is None, "next_url": None}
    if len(rows) > views.PAGE_SIZE:
        rows = rows[:views.PAGE_SIZE]
        pager["next_url"] = f"{path}?{urlencode({'before': key(rows[-1])})}"
    return rows, pager


@router.get("/billing/invoices")
def invoices(visit: Visitor, before: int | None = None):
    rows, pager = _paged(visit, views.list_invoices, before, "/billing/invoices", lambda invoice: invoice.number)
    return visit.render("billing/invoices.html", {
        "title": "Invoices", "invoices": rows, "titles": {i.id: views.invoice_title(i) for i in rows}, **pager,
    })


@router.get("/billing/invoices/{invoice_id}")
def invoice(visit: Visitor, invoice_id: str):
    with visit.ctx.db.transaction(readonly=True) as db:
        inv = views.customer_invoice(db, visit.customer_id, invoice_id)
        lines = list(inv.lines)
        attempts = views.invoice_attempts(db, inv)
    return visit.render("billing/invoice.html", {
        "title": f"Invoice {inv.number:06d}", "invoice": inv, "lines": lines, "attempts": attempts,
        "invoice_title": views.invoice_title(inv),
        "status_label": views.INVOICE_STATUS_LABELS.get(inv.status, inv.status),
    })


@router.get("/billing/invoices/{invoice_id}/pdf")
def invoice_pdf(visit: Visitor, invoice_id: str):
    with visit.ctx.db.transaction(readonly=True) as db:
        inv = views.customer_invoice(db, visit.customer_id, invoice_id)
        customer = views.get_customer(db, visit.customer_id)
        pdf = render_invoice_pdf(inv, customer, title=views.invoice_title(inv))
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{invoice_filename(inv)}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/billing/credits/history")
def history(visit: Visitor, before: int | None = None):
    lines, pager = _paged(visit, views.credit_history, before, "/billing/credits/history", lambda line: line.seq)
    return visit.render("billing/history.html", {"title": "Credit history", "lines": lines, **pager})
