"""Invoices: lines priced with discount and tax (`tax.price`), gapless sequential numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog
from creditflow.invoicing.models import Counter, Invoice, InvoiceLine
from creditflow.invoicing.tax import price, treatment_for
from creditflow.kit.db.paging import page_after
from creditflow.kit.db.rows import get_or_not_found, locking
from creditflow.kit.ids import new_id


@dataclass(frozen=True)
class LineDraft:
    kind: str
    description: str
    amount: int
    period_start: datetime | None = None
    period_end: datetime | None = None


def next_number(session: Session, name: str = "invoice") -> int:
    """Take the next number of a gapless counter; the row stays locked until commit, so a
    rollback gives it back."""
    # On the table, not the mapped class: a plain statement, no ORM bookkeeping (hot path).
    counters = Counter.__table__
    bump = update(counters).where(counters.c.name == name).values(value=counters.c.value + 1).returning(
        counters.c.value)
    number = session.scalar(bump)
    if number is None:  # the counter's first use
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(Counter).values(name=name, value=0).on_conflict_do_nothing(index_elements=["name"]))
        number = session.scalar(bump)
    return number


BALANCE_CREDIT = "Credited to the account balance"


def create_invoice(
    session: Session,
    catalog: Catalog,
    *,
    customer_id: str,
    purpose: str,
    lines: list[LineDraft],
    now: datetime,
    bill_to: dict | None,
    discount: int = 0,
    discount_description: str | None = None,
    subscription_id: str | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    dedupe_key: str | None = None,
    details: dict | None = None,
) -> Invoice:
    """An open invoice for `lines`, with the discount and the tax of the customer's billing
    details (`bill_to`, kept on the invoice as issued), and the catalog's seller.

    When credits exceed the charges (a credit for unused time worth more than the new price),
    the excess, tax included, goes to the account balance: a last line says so and the invoice's
    total is 0, so that `subtotal - discount + tax = total` still holds."""
    priced = price((line.amount for line in lines), treatment_for(catalog, bill_to), discount=discount)
    drafts = list(lines)
    if priced.discount:
        drafts.append(LineDraft("discount", discount_description or "Discount", -priced.discount))
    subtotal, total = priced.subtotal, priced.total
    credit = LineDraft("account_balance", BALANCE_CREDIT, -total) if total < 0 else None
    if credit is not None:
        subtotal, total = subtotal - total, 0
    invoice = Invoice(
        id=new_id("inv"), customer_id=customer_id, subscription_id=subscription_id, purpose=purpose,
        status="open", currency=catalog.currency, subtotal=subtotal, discount=priced.discount, tax=priced.tax,
        total=total, balance_applied=0, amount_paid=0, amount_refunded=0, period_start=period_start,
        period_end=period_end, dedupe_key=dedupe_key, details=details or {},
        seller=catalog.seller.as_dict() if catalog.seller else None, bill_to=bill_to, created_at=now,
    )
    for line in drafts:
        invoice.lines.append(InvoiceLine(
            position=len(invoice.lines), kind=line.kind, description=line.description,
            amount=line.amount, period_start=line.period_start, period_end=line.period_end,
        ))
    if priced.tax_line is not None:
        tax = priced.tax_line
        invoice.lines.append(InvoiceLine(position=len(invoice.lines), kind="tax", description=tax["description"],
                                         amount=tax["amount"], rate=tax["rate"], country=tax["country"]))
    if credit is not None:  # last, as on the quote
        invoice.lines.append(InvoiceLine(position=len(invoice.lines), kind=credit.kind,
                                         description=credit.description, amount=credit.amount))
    # Numbered last, so the counter row is locked for as short a time as possible.
    invoice.number = next_number(session)
    session.add(invoice)
    return invoice


def get_invoice(session: Session, invoice_id: str, *, for_update: bool = False) -> Invoice:
    return get_or_not_found(session, Invoice, invoice_id, noun="invoice", param="invoice", **locking(for_update))


def list_invoices(session: Session, *, customer_id: str | None = None, limit: int = 20,
                  starting_after: str | None = None) -> tuple[list[Invoice], bool]:
    """Oldest first (by number); `starting_after` continues after an invoice id."""
    query = select(Invoice)
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    return page_after(session, query, order_by=Invoice.number, id_column=Invoice.id, starting_after=starting_after,
                      limit=limit, noun="invoice")
