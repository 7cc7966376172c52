"""Helpers for the credit ledger tests: customers, subscriptions, and reading state back from
the database (never from what the services returned)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from creditflow.catalog.loader import load_catalog, load_catalog_text, default_catalog_path
from creditflow.context import Context
from creditflow.credits.access import free_day, reset_timezone
from creditflow.credits.balance import get_balance
from creditflow.credits.book import Book, run
from creditflow.credits.check import check_ledger
from creditflow.credits.models import CreditAccount, CreditEntry, CreditLot, CreditSpend
from creditflow.customer.service import create_customer, create_test_clock
from creditflow.purchase.payment_method import set_payment_method
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice
from creditflow.kit.clock import FixedClock
from creditflow.kit.credits import Credits
from creditflow.payment.models import PaymentAttempt, SandboxCharge
from creditflow.payment.sandbox import SandboxGateway
from creditflow.purchase.subscribe import subscribe

START = datetime(2026, 3, 10, 10, 0, tzinfo=timezone.utc)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def c(value) -> Credits:
    """Credits from a decimal string or an int: c("73.5"), c(100)."""
    return Credits.parse(str(value))


def make_ctx(db, *, catalog=None, at: datetime = START) -> Context:
    return Context(db=db, catalog=catalog or load_catalog(), gateway=SandboxGateway(db), clock=FixedClock(at))


def small_bundles_catalog():
    """The sample catalog plus bundles of 5 and 100 credits, for scenarios whose numbers need them."""
    text = default_catalog_path().read_text(encoding="utf-8")
    extra = ('bundles:\n'
             '  - {code: credits_5, name: "5 credits", credits: "5", price: 100}\n'
             '  - {code: credits_100, name: "100 credits", credits: "100", price: 200}\n')
    assert text.count("bundles:\n") == 1
    return load_catalog_text(text.replace("bundles:\n", extra), source="sample+small-bundles")


def new_customer(ctx, *, timezone: str | None = None, test_clock: str | None = None,
                 payment_method: str | None = None) -> str:
    with ctx.db.transaction() as session:
        customer_id = create_customer(ctx, session, external_id=f"ext-{uuid.uuid4().hex[:12]}",
                                      email="someone@example.com", timezone=timezone, test_clock=test_clock).id
    if payment_method:
        set_payment_method(ctx, customer_id, payment_method)
    return customer_id


def new_test_clock(ctx, at: datetime) -> str:
    with ctx.db.transaction() as session:
        return create_test_clock(session, at, now=at).id


def subscribed(ctx, customer_id: str, plan: str = "basic", term: str = "monthly"):
    set_payment_method(ctx, customer_id, "pm_card_ok")
    return subscribe(ctx, customer_id, plan, term)


def by_kind(ctx, customer_id: str) -> dict[str, Credits]:
    return ctx.db.read(lambda session: get_balance(ctx, session, customer_id)).by_kind


def assert_ledger_clean(db) -> None:
    with db.transaction(readonly=True) as session:
        problems = check_ledger(session)
    assert problems == []


@dataclass(frozen=True)
class Snapshot:
    """Everything a credit operation could change, to assert that a refused one changed nothing."""

    account: tuple
    lots: tuple
    entries: int
    spends: tuple
    events: int
    invoices: int
    attempts: int
    charges: int


def snapshot(db, customer_id: str) -> Snapshot:
    with db.transaction(readonly=True) as session:
        account = session.get(CreditAccount, customer_id)
        lots = session.execute(select(CreditLot.id, CreditLot.remaining, CreditLot.expired_at)
                               .where(CreditLot.customer_id == customer_id).order_by(CreditLot.id)).all()
        spends = session.execute(select(CreditSpend.id, CreditSpend.status, CreditSpend.refunded_at)
                                 .where(CreditSpend.customer_id == customer_id).order_by(CreditSpend.id)).all()

        def count(model, column):
            return session.scalar(select(func.count()).select_from(model).where(column == customer_id))

        return Snapshot(
            account=(account.granted, account.spent, account.expired, account.held, account.available,
                     account.free_day) if account else (),
            lots=tuple(map(tuple, lots)), entries=count(CreditEntry, CreditEntry.customer_id),
            spends=tuple(map(tuple, spends)), events=count(Event, Event.customer_id),
            invoices=count(Invoice, Invoice.customer_id), attempts=count(PaymentAttempt, PaymentAttempt.customer_id),
            charges=count(SandboxCharge, SandboxCharge.customer_ref),
        )


def lot_remaining(db, lot_id: str) -> Credits:
    with db.transaction(readonly=True) as session:
        return session.get(CreditLot, lot_id).remaining


def entries_of(db, customer_id: str) -> list[tuple[str, Credits, str | None]]:
    with db.transaction(readonly=True) as session:
        return [tuple(row) for row in session.execute(
            select(CreditEntry.kind, CreditEntry.amount, CreditEntry.lot_id)
            .where(CreditEntry.customer_id == customer_id).order_by(CreditEntry.seq))]


def give_lot(ctx, customer_id: str, kind: str, amount: Credits, *, created, expires_at) -> None:
    """A lot granted through the ledger's own book, as of `created`."""
    def work(cursor):
        book = Book.lock(ctx, cursor, customer_id, now=created)
        book.load()
        book.grant(kind, amount, expires_at=expires_at, grant_key=None, reason="test")
        book.flush()

    run(ctx, work)


def free_credits_today(ctx, customer_id: str) -> None:
    """Today's free credits, materialised as the first spend of the day would."""
    def work(cursor):
        book = Book.lock(ctx, cursor, customer_id)
        book.load()
        day = free_day(book.now, reset_timezone(ctx.catalog, book.account.timezone))
        book.ensure_free_credits(ctx.catalog.free.daily_credits, day)
        book.flush()

    run(ctx, work)


def funded_customer(ctx) -> str:
    """A customer in Asia/Kolkata holding 500 promo credits (a day old, never expiring) and
    today's free credits: what the spend fast paths are compared on."""
    customer_id = new_customer(ctx, timezone="Asia/Kolkata")
    give_lot(ctx, customer_id, "promo", c(500), created=START - timedelta(days=1), expires_at=None)
    free_credits_today(ctx, customer_id)
    return customer_id
