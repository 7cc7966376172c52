from __future__ import annotations

from fastapi import APIRouter, status

from creditflow.api.deps import Caller, Ctx, Limit, StartingAfter, Support
from creditflow.api.errors import errors
from creditflow.api.schemas.billing import InvoiceRead, RefundCreate, RefundEligibilityRead, RefundRead
from creditflow.api.schemas.common import ListOf, page
from creditflow.invoicing.service import get_invoice, list_invoices
from creditflow.purchase.refund import create_refund
from creditflow.refund.service import eligibility

router = APIRouter(tags=["invoices"])


@router.get("/invoices", response_model=ListOf[InvoiceRead], responses=errors(404, e404="`starting_after` names no invoice"))
def list_(ctx: Ctx, _: Caller, customer: str | None = None, limit: Limit = 20, starting_after: StartingAfter = None):
    with ctx.db.transaction(readonly=True) as session:
        rows, has_more = list_invoices(session, customer_id=customer, limit=limit, starting_after=starting_after)
        return page(rows, has_more, InvoiceRead.of)


@router.get("/invoices/{invoice_id}", response_model=InvoiceRead, responses=errors(404))
def read(invoice_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        return InvoiceRead.of(get_invoice(session, invoice_id))


@router.get("/invoices/{invoice_id}/refund_eligibility", response_model=RefundEligibilityRead,
            responses=errors(404))
def refund_eligibility(invoice_id: str, ctx: Ctx, _: Caller):
    result = ctx.db.read(lambda session: eligibility(ctx, session, invoice_id))
    return RefundEligibilityRead(invoice=invoice_id, eligible=result.eligible, reason=result.reason)


@router.post("/refunds", status_code=status.HTTP_201_CREATED, response_model=RefundRead,
             responses=errors(402, 403, 404, 409, e403="`forbidden`: needs a support key",
                              e409="`already_refunded`, `invoice_not_paid`, `refund_in_progress`"))
def refund(body: RefundCreate, ctx: Ctx, caller: Support):
    return RefundRead.of(create_refund(ctx, body.invoice, reason=body.reason, amount=body.amount,
                                       actor=caller.key_id))
