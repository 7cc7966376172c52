"""Billing details: the name, email, country, address and tax id invoices are issued to.

A change applies to later invoices only: each invoice keeps a copy of the details it was
issued with (`bill_to`)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session
from stdnum import get_cc_module

from creditflow.context import Context
from creditflow.customer.models import Customer
from creditflow.customer.service import customer_now, get_customer, language_tag
from creditflow.events.outbox import record_event
from creditflow.kit.countries import country_code
from creditflow.kit.errors import InvalidRequest

ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "state")
REQUIRED_ADDRESS_FIELDS = ("line1", "city", "postal_code")
EDITABLE = ("name", "email", "country", "address", "tax_id", "language")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OTHER_TAX_ID = re.compile(r"^[A-Z0-9][A-Z0-9./-]{1,31}$")
_VAT_PREFIX = {"GR": "EL"}  # Greece's VAT numbers are written EL...


def update_billing_details(ctx: Context, session: Session, customer_id: str, changes: dict[str, Any]) -> Customer:
    """Set the fields given in `changes` (a field set to None is cleared; name and email can't
    be cleared). Every field is checked before anything changes. Records `customer.updated`
    with the fields that changed."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidRequest(f"{unknown[0]} can't be changed here", param=unknown[0])
    customer = get_customer(session, customer_id, for_update=True)
    cleaned: dict[str, Any] = {}
    if "name" in changes:
        cleaned["name"] = _text(changes["name"], "name", 255, required=True)
    if "email" in changes:
        cleaned["email"] = _email(changes["email"])
    if "country" in changes:
        cleaned["country"] = None if changes["country"] is None else country_code(changes["country"])
    if "address" in changes:
        cleaned["address"] = None if changes["address"] is None else _address(changes["address"])
    if "language" in changes:
        cleaned["language"] = None if changes["language"] is None else language_tag(changes["language"])
    country = cleaned.get("country", customer.country)
    if "tax_id" in changes or ("country" in changes and customer.tax_id):
        # A tax id is checked against the country it belongs to, so a new country checks it again.
        cleaned["tax_id"] = _tax_id(changes.get("tax_id", customer.tax_id), country)
    changed = {field: value for field, value in cleaned.items() if getattr(customer, field) != value}
    for field, value in changed.items():
        setattr(customer, field, value)
    if changed:
        record_event(session, "customer.updated", customer_id=customer.id, now=customer_now(ctx, session, customer.id),
                     data={"customer": customer.id, "changed": sorted(changed), **changed})
    return customer


def bill_to(customer: Customer) -> dict[str, Any]:
    """The details an invoice is issued to, as they are now (the invoice keeps this copy)."""
    return {"name": customer.name, "email": customer.email, "address": customer.address,
            "country": customer.country, "tax_id": customer.tax_id}


def _text(value: Any, param: str, limit: int, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidRequest(f"{param} must be text of 1 to {limit} characters", param=param)
    return value.strip()


def _email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 320 or not _EMAIL.match(value):
        raise InvalidRequest("email must be an email address, like name@example.com", param="email")
    return value


def _address(value: Any) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise InvalidRequest("address must be an object with line1, city and postal_code", param="address")
    unknown = sorted(set(value) - set(ADDRESS_FIELDS))
    if unknown:
        raise InvalidRequest(f"address has no field {unknown[0]}", param=f"address.{unknown[0]}")
    return {field: _text(value.get(field), f"address.{field}", 200, required=field in REQUIRED_ADDRESS_FIELDS)
            for field in ADDRESS_FIELDS}


def _tax_id(value: Any, country: str | None) -> str | None:
    """A tax id checked with the rules of its country (format and check digits, where
    python-stdnum knows them; no network look-up), written the usual way: a VAT number with its
    country prefix ("DE136695976")."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("tax_id must be text", param="tax_id")
    if country is None:
        raise InvalidRequest("a tax id needs the customer's country; set country too", param="tax_id")
    vat = get_cc_module(country.lower(), "vat")
    if vat is None:
        compact = re.sub(r"[\s]", "", value).upper()
        if not _OTHER_TAX_ID.match(compact):
            raise InvalidRequest("tax_id must be 2 to 32 letters, digits, dots, dashes or slashes", param="tax_id")
        return compact
    if not vat.is_valid(value):
        raise InvalidRequest(f"tax_id {value!r} is not a valid {country} VAT number", param="tax_id")
    return _VAT_PREFIX.get(country, country) + vat.compact(value)
