"""Invoices and events over a few months with several customers: invoice numbers, lines and totals, and an
event for every change of state, written with the change."""

from __future__ import annotations

import re
from collections import Counter

from scenario_kit import utc
from sqlalchemy import select

from creditflow.credits.models import CreditEntry, CreditLot
from creditflow.events.models import Event
from creditflow.invoicing.models import Invoice
from creditflow.payment.models import PaymentAttempt
from creditflow.purchase.cancel import cancel_subscription
from creditflow.purchase.subscribe import subscribe


def _all(world, query):
    with world.db.transaction(readonly=True) as session:
        return list(session.scalars(query))


def test_invoices_are_numbered_in_sequence_with_lines_and_totals(world):
    monthly = world.shopper(utc(2026, 3, 10, 10))
    quarterly = world.shopper(utc(2026, 3, 12, 9))
    subscribe(world.ctx, monthly.id, "standard", "monthly")
    subscribe(world.ctx, quarterly.id, "basic", "quarterly")
    monthly.advance(utc(2026, 6, 1))  # renewals on 04-10, 05-10
    quarterly.advance(utc(2026, 6, 13))  # renewal on 06-12

    invoices = _all(world, select(Invoice).order_by(Invoice.number))
    assert [i.number for i in invoices] == [1, 2, 3, 4, 5]
    assert [(i.customer_id, i.purpose, i.total) for i in invoices] == [
        (monthly.id, "subscription_create", 3000),
        (quarterly.id, "subscription_create", 2295),
        (monthly.id, "renewal", 3000),
        (monthly.id, "renewal", 3000),
        (quarterly.id, "renewal", 2295),
    ]
    for invoice in invoices:
        assert invoice.status == "paid"
        assert invoice.currency == "usd"
        assert invoice.tax == 0
        assert invoice.subtotal == invoice.total == invoice.amount_paid
        assert invoice.paid_at == invoice.created_at
        [line] = invoice.lines
        assert line.position == 0
        assert line.kind == "subscription"
        assert line.amount == invoice.total
        assert (line.period_start, line.period_end) == (invoice.period_start, invoice.period_end)
        [attempt] = _all(world, select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
        assert (attempt.status, attempt.amount) == ("succeeded", invoice.total)
    assert [line.description for line in invoices[0].lines] == ["Standard plan, monthly"]
    assert [line.description for line in invoices[1].lines] == ["Basic plan, quarterly"]
    assert (invoices[4].period_start, invoices[4].period_end) == (utc(2026, 6, 12, 9), utc(2026, 9, 12, 9))


def test_every_change_of_state_records_an_event(world):
    paying = world.shopper(utc(2026, 3, 10, 10))
    leaving = world.shopper(utc(2026, 3, 10, 10))
    failing = world.shopper(utc(2026, 3, 10, 10), "pm_card_ok_then_declined")
    for shopper in (paying, leaving, failing):
        subscribe(world.ctx, shopper.id, "standard", "monthly")
    cancel_subscription(world.ctx, leaving.sub().id)
    for shopper in (paying, leaving, failing):
        shopper.advance(utc(2026, 4, 20))

    # The story, customer by customer, in the order it was written.
    assert paying.event_types() == [
        "customer.created", "payment_method.updated",
        "invoice.paid", "credits.granted", "subscription.created",              # 03-10
        "invoice.paid", "credits.expired", "credits.granted", "subscription.renewed",  # 04-10
    ]
    assert leaving.event_types() == [
        "customer.created", "payment_method.updated",
        "invoice.paid", "credits.granted", "subscription.created",
        "subscription.canceled",
        "credits.expired", "subscription.ended",                                # 04-10
    ]
    assert failing.event_types() == [
        "customer.created", "payment_method.updated",
        "invoice.paid", "credits.granted", "subscription.created",
        "invoice.payment_failed", "credits.expired", "subscription.past_due",   # 04-10
        "invoice.payment_failed",                                               # 04-11
        "invoice.payment_failed",                                               # 04-13
        "invoice.payment_failed", "subscription.ended",                         # 04-17
    ]
    assert [e.created_at for e in failing.events("invoice.payment_failed")] == [
        utc(2026, 4, 10, 10), utc(2026, 4, 11, 10), utc(2026, 4, 13, 10), utc(2026, 4, 17, 10)]
    assert [e.data["reason"] for e in leaving.events("subscription.ended")] == ["canceled"]
    assert [e.data["reason"] for e in failing.events("subscription.ended")] == ["payment_failed"]

    # Every row that records a change has its event, and no event is left without its row.
    events = _all(world, select(Event))
    plan_lots = select(CreditLot.id).where(CreditLot.kind == "subscription")
    lots = _all(world, select(CreditLot).where(CreditLot.kind == "subscription"))
    expiries = _all(world, select(CreditEntry).where(CreditEntry.kind == "expire", CreditEntry.lot_id.in_(plan_lots)))
    paid = _all(world, select(Invoice).where(Invoice.status == "paid"))
    failed = _all(world, select(PaymentAttempt).where(PaymentAttempt.status == "failed"))
    plan_credit_events = Counter(e.type for e in events if e.data.get("kind") == "subscription")
    by_type = Counter(e.type for e in events)
    assert plan_credit_events["credits.granted"] == len(lots) == 4
    assert {e.data["lot"] for e in events if e.type == "credits.granted"} >= {lot.id for lot in lots}
    assert plan_credit_events["credits.expired"] == len(expiries) == 3
    assert {e.data["lot"] for e in events if e.type == "credits.expired" and e.data["kind"] == "subscription"} == {
        x.lot_id for x in expiries}
    assert by_type["invoice.paid"] == len(paid) == 4
    assert {e.data["invoice"] for e in events if e.type == "invoice.paid"} == {i.id for i in paid}
    assert by_type["invoice.payment_failed"] == len(failed) == 4
    assert {e.data["attempt"] for e in events if e.type == "invoice.payment_failed"} == {a.id for a in failed}
    # Each event carries the instant of its change on the customer's clock.
    renewed = paying.events("subscription.renewed")[0]
    assert renewed.created_at == utc(2026, 4, 10, 10)
    assert renewed.data["current_term_end"] == "2026-05-10T10:00:00Z"
    # Instants inside event data and in ledger references are written as the API writes them.
    instants = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
    written = [value for e in events for value in e.data.values() if isinstance(value, str) and instants.search(value)]
    written += [x.reference for x in _all(world, select(CreditEntry)) if x.reference and instants.search(x.reference)]
    assert written and all(re.search(r"T\d\d:\d\d:\d\dZ($|:)", value) for value in written), written
