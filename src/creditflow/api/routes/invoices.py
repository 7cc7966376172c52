from __future__ import annotations

from fastapi import APIRouter, status

from creditflow.api.audit import as_support, invoice_customer
from creditflow.api.deps import Caller, Ctx, Limit, StartingAfter, Support
from creditflow.api.errors import errors
from creditflow.api.schemas.billing import InvoiceRead, RefundCreate, RefundEligibilityRead, RefundRead
from creditflow.api.schemas.common import ListOf, page
from creditflow.invoicing.service import get_invoice, list_invoices
from creditflow.kit.money import format_money
from creditflow.payment.attempts import attempts_by_invoice
from creditflow.purchase.refund import create_refund
from creditflow.refund.service import eligibility

router = APIRouter(tags=["invoices"])


@router.get("/invoices", response_model=ListOf[InvoiceRead], responses=errors(404, e404="`starting_after` names no invoice"))
def list_(ctx: Ctx, _: Caller, customer: str | None = None, limit: Limit = 20, starting_after: StartingAfter = None):
    with ctx.db.transaction(readonly=True) as session:
        rows, has_more = list_invoices(session, customer_id=customer, limit=limit, starting_after=starting_after)
        attempts = attempts_by_invoice(session, [invoice.id for invoice in rows])
        return page(rows, has_more, lambda invoice: InvoiceRead.of(invoice, attempts[invoice.id]))


@router.get("/invoices/{invoice_id}", response_model=InvoiceRead, responses=errors(404))
def read(invoice_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        invoice = get_invoice(session, invoice_id)
        return InvoiceRead.of(invoice, attempts_by_invoice(session, [invoice.id])[invoice.id])


@router.get("/invoices/{invoice_id}/refund_eligibility", response_model=RefundEligibilityRead,
            responses=errors(404))
def refund_eligibility(invoice_id: str, ctx: Ctx, _: Caller):
    result = ctx.db.read(lambda session: eligibility(ctx, session, invoice_id))
    return RefundEligibilityRead(invoice=invoice_id, eligible=result.eligible, reason=result.reason)


@router.post("/refunds", status_code=status.HTTP_201_CREATED, response_model=RefundRead,
             responses=errors(402, 403, 404, 409, e403="`forbidden`: needs a support key",
                              e409="`already_refunded`, `invoice_not_paid`, `refund_in_progress`"))
def refund(body: RefundCreate, ctx: Ctx, caller: Support):
    what = format_money(body.amount, ctx.catalog.currency) if body.amount is not None else "the full amount"
    return RefundRead.of(as_support(
        ctx, caller, lambda: create_refund(ctx, body.invoice, reason=body.reason, amount=body.amount,
                                           actor=caller.key_id),
        action="invoice.refund", summary=f"Refund {what} on invoice {body.invoice}",
        done=f"Refunded {what} on invoice {body.invoice}", reason=body.reason,
        customer_id=invoice_customer(ctx, body.invoice), details={"invoice": body.invoice, "amount": body.amount},
        describe=lambda refund: f"refund {refund.id}: {format_money(refund.amount, refund.currency)} {refund.status}"))
