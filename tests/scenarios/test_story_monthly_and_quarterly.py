"""Subscribing, monthly grants and renewals over the calendar: a monthly and a quarterly
Standard subscription, month by month."""

from __future__ import annotations

from datetime import timedelta

from scenario_kit import credits, spend_function, utc

from creditflow.kit.credits import Credits
from creditflow.purchase.subscribe import subscribe


def test_standard_monthly_bought_on_march_10th_renews_on_april_10th_without_rollover(world):
    start = utc(2026, 3, 10, 10)
    alice = world.shopper(start)

    sub = subscribe(world.ctx, alice.id, "standard", "monthly")

    # Subscribing: $30 charged at once; active for [03-10 10:00, 04-10 10:00); 8,000 credits.
    assert alice.charged() == [3000]
    stored = alice.sub()
    assert stored.id == sub.id
    assert (stored.status, stored.plan, stored.term) == ("active", "standard", "monthly")
    assert stored.anchor == start
    assert (stored.current_term_start, stored.current_term_end) == (start, utc(2026, 4, 10, 10))
    assert stored.due_at == utc(2026, 4, 10, 10)  # the next renewal
    [invoice] = alice.invoices()
    assert (invoice.purpose, invoice.status, invoice.total, invoice.amount_paid) == (
        "subscription_create", "paid", 3000, 3000)
    assert (invoice.period_start, invoice.period_end) == (start, utc(2026, 4, 10, 10))
    [lot] = alice.lots()
    assert (lot.kind, lot.granted, lot.remaining) == ("subscription", credits(8000), credits(8000))
    assert lot.expires_at == utc(2026, 4, 10, 10)
    assert alice.account().available == credits(8000)
    assert alice.plan() == "standard"

    # Spend down to 1,200 when the credit ledger's spend exists; otherwise the full 8,000 is
    # what is left at the renewal. Either way the renewal sets 8,000, never adds to what's left.
    spend = spend_function()
    left = credits(8000)
    if spend is not None:
        alice.advance(utc(2026, 4, 2, 9))
        spend(world.ctx, alice.id, amount="6800", feature="standard_models", reference="job-1")
        left = credits(1200)
        assert alice.account().available == left

    # One second before the boundary: nothing has happened yet.
    alice.advance(utc(2026, 4, 10, 9, 59, 59))
    assert alice.charged() == [3000]
    assert alice.plan_credits() == left

    alice.advance(utc(2026, 4, 10, 10))
    assert alice.charged() == [3000, 3000]
    renewed = alice.sub()
    assert renewed.status == "active"
    assert renewed.anchor == start
    assert (renewed.current_term_start, renewed.current_term_end) == (utc(2026, 4, 10, 10), utc(2026, 5, 10, 10))
    assert renewed.due_at == utc(2026, 5, 10, 10)
    first, second = alice.invoices()
    assert second.number == first.number + 1
    assert (second.purpose, second.status, second.total) == ("renewal", "paid", 3000)
    assert (second.period_start, second.period_end) == (utc(2026, 4, 10, 10), utc(2026, 5, 10, 10))
    assert second.created_at == second.paid_at == utc(2026, 4, 10, 10)

    old, new = alice.lots()
    assert old.id == lot.id
    assert (old.remaining, old.expired_at) == (Credits(0), utc(2026, 4, 10, 10))
    expiries = [e for e in alice.entries() if e.kind == "expire"]
    assert [(e.lot_id, e.amount) for e in expiries] == [(old.id, left)]
    assert (new.granted, new.remaining, new.expires_at) == (credits(8000), credits(8000), utc(2026, 5, 10, 10))
    assert new.created_at == utc(2026, 4, 10, 10)
    assert alice.plan_credits() == credits(8000)  # not 9,200
    assert alice.account().available == credits(8000)
    alice.assert_ledger_balanced()

    # And again a month later, on the anchor's day.
    alice.advance(utc(2026, 5, 10, 10))
    assert alice.charged() == [3000, 3000, 3000]
    assert [i.period_start for i in alice.invoices()] == [start, utc(2026, 4, 10, 10), utc(2026, 5, 10, 10)]
    assert alice.plan_credits() == credits(8000)
    assert len(alice.live_lots()) == 1
    alice.assert_ledger_balanced()


def test_standard_quarterly_charges_once_and_grants_monthly(world):
    start = utc(2026, 1, 15, 8, 30)
    bob = world.shopper(start)

    subscribe(world.ctx, bob.id, "standard", "quarterly")

    assert bob.charged() == [7650]
    sub = bob.sub()
    assert (sub.current_term_start, sub.current_term_end) == (start, utc(2026, 4, 15, 8, 30))
    assert sub.due_at == utc(2026, 2, 15, 8, 30)  # the next monthly grant, not a charge

    # A grant on each monthly boundary of the term, set to the allotment (no rollover).
    for month in (2, 3):
        boundary = utc(2026, month, 15, 8, 30)
        bob.advance(boundary - timedelta(seconds=1))
        assert len(bob.lots()) == month - 1
        bob.advance(boundary)
        lots = bob.lots()
        assert len(lots) == month
        assert [lot.created_at for lot in lots] == [utc(2026, m, 15, 8, 30) for m in range(1, month + 1)]
        assert all(lot.expired_at == lot.expires_at for lot in lots[:-1])
        assert (lots[-1].granted, lots[-1].remaining) == (credits(8000), credits(8000))
        assert lots[-1].expires_at == utc(2026, month + 1, 15, 8, 30)
        assert bob.plan_credits() == credits(8000)
        assert bob.charged() == [7650]  # no charge on the monthly grants
        assert len(bob.invoices()) == 1
        assert bob.sub().current_term_end == utc(2026, 4, 15, 8, 30)

    bob.advance(utc(2026, 4, 15, 8, 29, 59))
    assert bob.charged() == [7650]
    bob.advance(utc(2026, 4, 15, 8, 30))
    assert bob.charged() == [7650, 7650]
    renewal = bob.invoices()[-1]
    assert (renewal.purpose, renewal.total, renewal.status) == ("renewal", 7650, "paid")
    assert (renewal.period_start, renewal.period_end) == (utc(2026, 4, 15, 8, 30), utc(2026, 7, 15, 8, 30))
    assert [line.amount for line in renewal.lines] == [7650]
    sub = bob.sub()
    assert (sub.current_term_start, sub.current_term_end) == (utc(2026, 4, 15, 8, 30), utc(2026, 7, 15, 8, 30))
    assert [lot.created_at for lot in bob.lots()] == [utc(2026, m, 15, 8, 30) for m in (1, 2, 3, 4)]
    assert bob.plan_credits() == credits(8000)
    bob.assert_ledger_balanced()


def test_a_long_jump_of_the_clock_runs_every_boundary_in_order(world):
    """Advancing a test clock six months at once does what six monthly steps would."""
    start = utc(2026, 1, 15, 8, 30)
    carol = world.shopper(start)
    subscribe(world.ctx, carol.id, "standard", "quarterly")

    carol.advance(utc(2026, 7, 20))

    assert carol.charged() == [7650, 7650, 7650]
    assert [i.period_start for i in carol.invoices()] == [start, utc(2026, 4, 15, 8, 30), utc(2026, 7, 15, 8, 30)]
    assert [lot.created_at for lot in carol.lots()] == [utc(2026, m, 15, 8, 30) for m in range(1, 8)]
    # Each expiry happened at its boundary, not at the end of the jump.
    assert [lot.expired_at for lot in carol.lots()] == [utc(2026, m, 15, 8, 30) for m in range(2, 8)] + [None]
    assert carol.plan_credits() == credits(8000)
    carol.assert_ledger_balanced()
