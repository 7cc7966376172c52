"""Invoices: drafts with lines, gapless sequential numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from creditflow.invoicing.models import Counter, Invoice, InvoiceLine
from creditflow.kit.db.paging import page_after
from creditflow.kit.errors import NotFound
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


def create_invoice(
    session: Session,
    *,
    customer_id: str,
    currency: str,
    purpose: str,
    lines: list[LineDraft],
    now: datetime,
    bill_to: dict | None,
    subscription_id: str | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    dedupe_key: str | None = None,
    details: dict | None = None,
) -> Invoice:
    subtotal = sum(line.amount for line in lines)
    invoice = Invoice(
        id=new_id("inv"), customer_id=customer_id, subscription_id=subscription_id, purpose=purpose,
        status="open", currency=currency, subtotal=subtotal, tax=0, total=subtotal, balance_applied=0,
        amount_paid=0, amount_refunded=0, period_start=period_start, period_end=period_end,
        dedupe_key=dedupe_key, details=details or {}, bill_to=bill_to, created_at=now,
    )
    for position, line in enumerate(lines):
        invoice.lines.append(InvoiceLine(
            position=position, kind=line.kind, description=line.description,
            amount=line.amount, period_start=line.period_start, period_end=line.period_end,
        ))
    # Numbered last, so the counter row is locked for as short a time as possible.
    invoice.number = next_number(session)
    session.add(invoice)
    return invoice


def get_invoice(session: Session, invoice_id: str, *, for_update: bool = False) -> Invoice:
    invoice = session.get(Invoice, invoice_id, with_for_update=for_update or None, populate_existing=for_update)
    if invoice is None:
        raise NotFound(f"no such invoice: {invoice_id}", param="invoice")
    return invoice


def list_invoices(session: Session, *, customer_id: str | None = None, limit: int = 20,
                  starting_after: str | None = None) -> tuple[list[Invoice], bool]:
    """Oldest first (by number); `starting_after` continues after an invoice id."""
    query = select(Invoice)
    if customer_id is not None:
        query = query.where(Invoice.customer_id == customer_id)
    return page_after(session, query, order_by=Invoice.number, id_column=Invoice.id, starting_after=starting_after,
                      limit=limit, noun="invoice")
