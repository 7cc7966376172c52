"""Invoices (P1), as pages and PDFs, and the credit history, paged."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from creditflow.invoicing.pdf import invoice_filename, render_invoice_pdf
from creditflow.web import views
from creditflow.web.billing.pages import BillingPages


def add_routes(router: APIRouter, pages: BillingPages) -> None:
    ctx = pages.ctx

    # --- invoices (P1) and the credit history ----------------------------------------------

    @router.get("/billing/invoices")
    @pages.guarded
    async def invoices(request: Request, before: int | None = None):
        session = pages.session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            rows = views.list_invoices(db, session.customer, limit=views.PAGE_SIZE + 1, before=before)
        more = len(rows) > views.PAGE_SIZE
        rows = rows[:views.PAGE_SIZE]
        return pages.render(request, session, "billing/invoices.html", {
            "title": "Invoices", "invoices": rows, "titles": {i.id: views.invoice_title(i) for i in rows},
            "next_url": f"/billing/invoices?{urlencode({'before': rows[-1].number})}" if more else None,
            "first_page": before is None,
        })

    @router.get("/billing/invoices/{invoice_id}")
    @pages.guarded
    async def invoice(request: Request, invoice_id: str):
        session = pages.session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            inv = views.customer_invoice(db, session.customer, invoice_id)
            lines = list(inv.lines)
        return pages.render(request, session, "billing/invoice.html", {
            "title": f"Invoice {inv.number:06d}", "invoice": inv, "lines": lines,
            "invoice_title": views.invoice_title(inv),
            "status_label": views.INVOICE_STATUS_LABELS.get(inv.status, inv.status),
        })

    @router.get("/billing/invoices/{invoice_id}/pdf")
    @pages.guarded
    async def invoice_pdf(request: Request, invoice_id: str):
        session = pages.session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            inv = views.customer_invoice(db, session.customer, invoice_id)
            customer = views.get_customer(db, session.customer)
            pdf = render_invoice_pdf(inv, customer, title=views.invoice_title(inv))
        return Response(pdf, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{invoice_filename(inv)}"',
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    @router.get("/billing/credits/history")
    @pages.guarded
    async def history(request: Request, before: int | None = None):
        session = pages.session_of(request)
        with ctx.db.transaction(readonly=True) as db:
            lines = views.credit_history(db, session.customer, limit=views.PAGE_SIZE + 1, before=before)
        more = len(lines) > views.PAGE_SIZE
        lines = lines[:views.PAGE_SIZE]
        return pages.render(request, session, "billing/history.html", {
            "title": "Credit history", "lines": lines, "first_page": before is None,
            "next_url": f"/billing/credits/history?{urlencode({'before': lines[-1].seq})}" if more else None,
        })
