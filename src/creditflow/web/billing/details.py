"""Billing details on the page: name, address, country and tax id, through the same service as
the API (`customer.billing.update_billing_details`); a refused field is shown next to it."""

from __future__ import annotations

from fastapi import APIRouter

from creditflow.customer.billing import ADDRESS_FIELDS, update_billing_details
from creditflow.kit.errors import CreditflowError
from creditflow.web import views
from creditflow.web.billing.pages import PostedForm, Visitor
from creditflow.web.messages import plain
from creditflow.web.rendering import HTMLErrorRoute

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
PAGE = "/billing/details"


def _form_of(customer) -> dict[str, str]:
    address = customer.address or {}
    return {"name": customer.name or "", "country": customer.country or "", "tax_id": customer.tax_id or "",
            **{f"address.{field}": address.get(field) or "" for field in ADDRESS_FIELDS}}


def _changes(form: dict[str, str]) -> dict:
    """The form as the service's changes: an empty field clears it (an address with no field
    filled in is no address), except the name, which can't be cleared: left empty, it stays."""
    def value(name: str) -> str | None:
        return form.get(name, "").strip() or None

    address = {field: value(f"address.{field}") for field in ADDRESS_FIELDS}
    changes = {"country": value("country"), "tax_id": value("tax_id"),
               "address": address if any(address.values()) else None}
    if value("name") is not None:
        changes["name"] = value("name")
    return changes


@router.get(PAGE)
def details(visit: Visitor):
    with visit.ctx.db.transaction(readonly=True) as db:
        customer = views.get_customer(db, visit.customer_id)
    return visit.render("billing/details.html", {"title": "Billing details", "values": _form_of(customer),
                                                 "errors": {}}, customer=customer)


@router.post(PAGE)
def details_save(visit: Visitor, form: PostedForm):
    """Save the details for later invoices (those already issued keep theirs)."""
    try:
        visit.ctx.db.run(lambda db: update_billing_details(visit.ctx, db, visit.customer_id, _changes(form)))
    except CreditflowError as exc:
        values = {name: form.get(name, "")[:300] for name in _form_of_names()}
        field = exc.param if exc.param in values else ("address.line1" if exc.param == "address" else None)
        return visit.render("billing/details.html", {
            "title": "Billing details", "values": values,
            "errors": {field or "_form": plain(exc)}}, status=422)
    return visit.done("Your billing details are saved. Your next invoices will show them.")


def _form_of_names() -> list[str]:
    return ["name", "country", "tax_id", *(f"address.{field}" for field in ADDRESS_FIELDS)]
