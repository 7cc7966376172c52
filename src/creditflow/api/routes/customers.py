from __future__ import annotations

from fastapi import APIRouter, status

from creditflow.api.deps import Caller, Ctx, Limit, StartingAfter
from creditflow.api.errors import errors
from creditflow.api.schemas.common import ListOf, page
from creditflow.api.schemas.customer import (
    CustomerCreate,
    CustomerRead,
    CustomerUpdate,
    PaymentMethodRead,
    PaymentMethodSet,
)
from creditflow.customer.billing import update_billing_details
from creditflow.customer.service import create_customer, get_customer, list_customers
from creditflow.kit.errors import NotFound
from creditflow.purchase.payment_method import set_payment_method
from creditflow.subscription.service import customer_plan

router = APIRouter(tags=["customers"])


@router.post("/customers", status_code=status.HTTP_201_CREATED, response_model=CustomerRead,
             responses=errors(404, 409, e409="`customer_exists`, or `idempotency_key_reused`",
                              e404="No such test clock"))
def create(body: CustomerCreate, ctx: Ctx, _: Caller):
    with ctx.db.transaction() as session:
        customer = create_customer(ctx, session, **body.model_dump())
        return CustomerRead.of(customer, "free")


@router.get("/customers", response_model=ListOf[CustomerRead], responses=errors())
def list_(ctx: Ctx, _: Caller, external_id: str | None = None, limit: Limit = 20,
          starting_after: StartingAfter = None):
    with ctx.db.transaction(readonly=True) as session:
        rows, has_more = list_customers(session, external_id=external_id, limit=limit,
                                        starting_after=starting_after)
        return page(rows, has_more, lambda c: CustomerRead.of(c, customer_plan(session, c.id)))


@router.get("/customers/{customer_id}", response_model=CustomerRead, responses=errors(404))
def read(customer_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        return CustomerRead.of(get_customer(session, customer_id), customer_plan(session, customer_id))


@router.post("/customers/{customer_id}", response_model=CustomerRead, responses=errors(404))
def update(customer_id: str, body: CustomerUpdate, ctx: Ctx, _: Caller):
    """Billing details; later invoices are issued to them, earlier ones keep theirs."""
    changes = body.model_dump(include=body.model_fields_set)
    with ctx.db.transaction() as session:
        customer = update_billing_details(ctx, session, customer_id, changes)
        return CustomerRead.of(customer, customer_plan(session, customer_id))


@router.post("/customers/{customer_id}/payment_method", response_model=PaymentMethodRead,
             responses=errors(402, 404, 409, e402="`payment_failed`: the gateway refused the method"))
def payment_method(customer_id: str, body: PaymentMethodSet, ctx: Ctx, _: Caller):
    """Set the default payment method; a subscription in dunning is retried with it at once."""
    return PaymentMethodRead.of(set_payment_method(ctx, customer_id, body.token))


@router.get("/customers/{customer_id}/payment_method", response_model=PaymentMethodRead,
            responses=errors(404, e404="No such customer, or `no_payment_method`"))
def read_payment_method(customer_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        customer = get_customer(session, customer_id)
        if customer.payment_method is None:
            raise NotFound("the customer has no payment method", code="no_payment_method")
        return PaymentMethodRead.of(customer)
