"""Renewals paid from the account balance (what an upgrade worth less than the unused time
leaves): the balance pays first, the card only the rest, and the renewal is complete either way."""

from __future__ import annotations

from scenario_kit import credits, utc

from creditflow.purchase.change import change_subscription
from creditflow.purchase.subscribe import subscribe

START = utc(2026, 1, 1, 10)
CHANGE = utc(2026, 1, 2, 10)


def test_renewals_are_paid_from_the_balance_then_from_the_card(world):
    uma = world.shopper(START)
    sub = subscribe(world.ctx, uma.id, "standard", "yearly")
    uma.advance(CHANGE)

    # Ultimate monthly costs 5000; 364 of 365 days of a 25200 year are unused: 25131 back.
    change_subscription(world.ctx, sub.id, plan="ultimate", term="monthly", timing="immediate")

    assert uma.charged() == [25200]
    with world.db.transaction(readonly=True) as session:
        from creditflow.customer.models import Customer

        assert session.get(Customer, uma.id).balance == 20131
    changed = uma.sub()
    assert (changed.plan, changed.term, changed.anchor) == ("ultimate", "monthly", CHANGE)

    uma.advance(utc(2026, 5, 2, 10))  # four renewals: 02-02, 03-02, 04-02, 05-02

    renewals = [i for i in uma.invoices() if i.purpose == "renewal"]
    assert [(i.period_start, i.total, i.balance_applied, i.amount_paid, i.status) for i in renewals] == [
        (utc(2026, m, 2, 10), 5000, 5000, 0, "paid") for m in (2, 3, 4, 5)]
    assert uma.charged() == [25200]  # the card was not touched
    stored = uma.sub()
    assert (stored.status, stored.plan, stored.current_term_end, stored.lease_owner) == (
        "active", "ultimate", utc(2026, 6, 2, 10), None)
    assert stored.due_at == utc(2026, 6, 2, 10)
    assert [lot.created_at for lot in uma.lots()][-4:] == [utc(2026, m, 2, 10) for m in (2, 3, 4, 5)]
    assert uma.plan_credits() == credits(16000)
    assert len(uma.events("subscription.renewed")) == 4
    with world.db.transaction(readonly=True) as session:
        assert session.get(Customer, uma.id).balance == 131

    # The fifth renewal: 131 from the balance, 4869 from the card.
    uma.advance(utc(2026, 6, 2, 10))
    last = uma.invoices()[-1]
    assert (last.total, last.balance_applied, last.amount_paid, last.status) == (5000, 131, 4869, "paid")
    assert uma.charged() == [25200, 4869]
    with world.db.transaction(readonly=True) as session:
        assert session.get(Customer, uma.id).balance == 0
    assert uma.sub().current_term_end == utc(2026, 7, 2, 10)
    uma.assert_ledger_balanced()
