"""Boundaries count from the anchor with the day clamped, the time of day kept."""

from __future__ import annotations

from scenario_kit import credits, utc

from creditflow.purchase.subscribe import subscribe


def test_yearly_plan_started_on_january_31st_refreshes_on_each_month_end(world):
    start = utc(2026, 1, 31, 18, 45)
    dana = world.shopper(start)
    subscribe(world.ctx, dana.id, "standard", "yearly")

    dana.advance(utc(2027, 2, 1))

    expected = [utc(2026, 1, 31, 18, 45), utc(2026, 2, 28, 18, 45), utc(2026, 3, 31, 18, 45),
                utc(2026, 4, 30, 18, 45), utc(2026, 5, 31, 18, 45), utc(2026, 6, 30, 18, 45),
                utc(2026, 7, 31, 18, 45), utc(2026, 8, 31, 18, 45), utc(2026, 9, 30, 18, 45),
                utc(2026, 10, 31, 18, 45), utc(2026, 11, 30, 18, 45), utc(2026, 12, 31, 18, 45),
                utc(2027, 1, 31, 18, 45)]
    lots = dana.lots()
    assert [lot.created_at for lot in lots] == expected
    assert [lot.expires_at for lot in lots] == expected[1:] + [utc(2027, 2, 28, 18, 45)]
    assert all(lot.granted == credits(8000) for lot in lots)
    # One yearly charge, then the renewal a year after the anchor.
    assert dana.charged() == [25200, 25200]
    assert [i.created_at for i in dana.invoices()] == [start, utc(2027, 1, 31, 18, 45)]
    sub = dana.sub()
    assert sub.anchor == start
    assert (sub.current_term_start, sub.current_term_end) == (utc(2027, 1, 31, 18, 45), utc(2028, 1, 31, 18, 45))
    assert sub.due_at == utc(2027, 2, 28, 18, 45)
    dana.assert_ledger_balanced()


def test_monthly_plan_started_on_january_31st_of_a_leap_year(world):
    start = utc(2028, 1, 31, 0, 0)
    eve = world.shopper(start)
    subscribe(world.ctx, eve.id, "standard", "monthly")

    eve.advance(utc(2028, 2, 28, 23, 59, 59))
    assert eve.charged() == [3000]  # not on the 28th: 2028 is a leap year

    eve.advance(utc(2028, 5, 1))

    invoices = eve.invoices()
    assert [(i.period_start, i.period_end) for i in invoices] == [
        (utc(2028, 1, 31), utc(2028, 2, 29)),
        (utc(2028, 2, 29), utc(2028, 3, 31)),  # back to the 31st, not stuck on the 29th
        (utc(2028, 3, 31), utc(2028, 4, 30)),
        (utc(2028, 4, 30), utc(2028, 5, 31)),
    ]
    assert [i.created_at for i in invoices] == [utc(2028, 1, 31), utc(2028, 2, 29), utc(2028, 3, 31),
                                                utc(2028, 4, 30)]
    assert eve.charged() == [3000] * 4
    assert [lot.expires_at for lot in eve.lots()] == [utc(2028, 2, 29), utc(2028, 3, 31), utc(2028, 4, 30),
                                                      utc(2028, 5, 31)]
    assert eve.sub().due_at == utc(2028, 5, 31)
