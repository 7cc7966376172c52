"""Granting and expiring credit lots, with their ledger entries and account totals.

Every change to a lot goes through here or through the spend module, so that the account
totals (K6) move in step with the entries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from creditflow.credits.models import CreditAccount, CreditEntry, CreditLot
from creditflow.events.outbox import record_event
from creditflow.kit.credits import Credits
from creditflow.kit.errors import NotFound
from creditflow.kit.ids import new_id


def lock_account(session: Session, customer_id: str) -> CreditAccount:
    """The customer's credit account, row-locked until commit (serialises their spends)."""
    account = session.get(CreditAccount, customer_id, with_for_update=True, populate_existing=True)
    if account is None:
        raise NotFound(f"no such customer: {customer_id}", param="customer")
    return account


def add_entry(
    session: Session,
    *,
    customer_id: str,
    kind: str,
    amount: Credits,
    lot_id: str | None,
    now: datetime,
    reference: str | None = None,
) -> CreditEntry:
    entry = CreditEntry(
        id=new_id("cre"), customer_id=customer_id, lot_id=lot_id, kind=kind, amount=amount,
        reference=reference, created_at=now,
    )
    session.add(entry)
    return entry


def grant_credits(
    session: Session,
    *,
    customer_id: str,
    kind: str,
    amount: Credits,
    now: datetime,
    expires_at: datetime | None = None,
    subscription_id: str | None = None,
    invoice_id: str | None = None,
    grant_key: str | None = None,
    reason: str | None = None,
    account: CreditAccount | None = None,
    emit_event: bool = True,
) -> CreditLot:
    """Create a lot. `grant_key` is unique in the database, so a repeated grant fails loudly."""
    account = account or lock_account(session, customer_id)
    lot = CreditLot(
        id=new_id("lot"), customer_id=customer_id, kind=kind, granted=amount, remaining=amount,
        expires_at=expires_at, subscription_id=subscription_id, invoice_id=invoice_id,
        grant_key=grant_key, reason=reason, created_at=now,
    )
    session.add(lot)
    add_entry(session, customer_id=customer_id, kind="grant", amount=amount, lot_id=lot.id, now=now,
              reference=grant_key)
    account.granted += amount
    account.available += amount
    if emit_event:
        record_event(session, "credits.granted", customer_id=customer_id, now=now, data={
            "lot": lot.id, "kind": kind, "amount": str(amount),
            "expires_at": expires_at.isoformat() if expires_at else None,
        })
    return lot


def expire_lot(session: Session, lot: CreditLot, *, now: datetime, account: CreditAccount | None = None,
               emit_event: bool = True) -> Credits:
    """Expire what is left of a lot; returns the amount expired."""
    if lot.expired_at is not None:
        return Credits(0)
    amount = lot.remaining
    if amount:
        # Lock (and query) before changing the lot: an autoflush of a half-expired lot would
        # break the "expired lots are empty" check.
        account = account or lock_account(session, lot.customer_id)
    lot.expired_at = now
    if amount:
        lot.remaining = Credits(0)
        add_entry(session, customer_id=lot.customer_id, kind="expire", amount=amount, lot_id=lot.id, now=now)
        account.expired += amount
        account.available -= amount
        if emit_event:
            record_event(session, "credits.expired", customer_id=lot.customer_id, now=now, data={
                "lot": lot.id, "kind": lot.kind, "amount": str(amount),
            })
    return amount


def expire_subscription_lots(session: Session, subscription_id: str, customer_id: str, *, now: datetime) -> Credits:
    """Expire every live plan-credit lot of a subscription (end of a month, of a term, a change)."""
    # The account first, then its lots: the order every credit change takes locks in, so a
    # renewal and a spend of the same customer queue instead of deadlocking.
    account = lock_account(session, customer_id)
    lots = session.scalars(
        select(CreditLot).where(
            CreditLot.subscription_id == subscription_id,
            CreditLot.kind == "subscription",
            CreditLot.expired_at.is_(None),
        ).with_for_update()
    ).all()
    if not lots:
        return Credits(0)
    total = Credits(0)
    for lot in lots:
        total += expire_lot(session, lot, now=now, account=account)
    return total
