"""Changing the catalog in production, month by month: a price edit reprices nobody already
subscribed, `creditflow catalog migrate` moves a cohort with notice, and a plan taken off sale
keeps renewing its subscribers while nobody can buy it."""

from __future__ import annotations

from pathlib import Path

import pytest
from scenario_kit import utc
from sqlalchemy import select
from typer.testing import CliRunner

from creditflow.catalog.loader import default_catalog_path, load_catalog_text
from creditflow.cli import app
from creditflow.events.models import Event
from creditflow.kit.errors import Conflict
from creditflow.purchase.change import change_subscription
from creditflow.purchase.subscribe import subscribe
from creditflow.subscription.change import preview_change
from creditflow.web.views import billing_page

SAMPLE = Path(default_catalog_path()).read_text(encoding="utf-8")
STANDARD_MONTHLY = "prices: {monthly: 3000,"


def edited(old: str, new: str) -> str:
    assert SAMPLE.count(old) == 1, old
    return SAMPLE.replace(old, new)


def invoice_lines(shopper) -> list[tuple[str, int]]:
    return [(invoice.purpose, invoice.lines[0].amount) for invoice in shopper.invoices()]


def ledger_check_passes(db) -> None:
    result = CliRunner().invoke(app, ["ledger", "check", "--database-url", db.url])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "ledger check passed"


def next_renewal_shown(world, shopper) -> int:
    with world.db.transaction(readonly=True) as session:
        return billing_page(world.ctx, session, shopper.id).renewal_amount


def test_a_price_edit_reprices_new_subscribers_only(world):
    alice = world.shopper(utc(2026, 3, 10, 10))
    subscribe(world.ctx, alice.id, "standard", "monthly")
    assert alice.charged() == [3000]
    assert alice.sub().price == 3000

    # The operator raises Standard monthly to $35 in the file the service runs on.
    world.ctx.catalog = load_catalog_text(edited(STANDARD_MONTHLY, "prices: {monthly: 3500,"))
    assert next_renewal_shown(world, alice) == 3000  # the billing page shows what she will pay

    bob = world.shopper(utc(2026, 3, 15, 9))
    subscribe(world.ctx, bob.id, "standard", "monthly")
    assert bob.charged() == [3500]
    assert bob.sub().price == 3500

    alice.advance(utc(2026, 4, 10, 10))
    assert alice.charged() == [3000, 3000]
    alice.advance(utc(2026, 5, 10, 10))
    assert alice.charged() == [3000, 3000, 3000]
    assert invoice_lines(alice) == [("subscription_create", 3000), ("renewal", 3000), ("renewal", 3000)]
    assert (alice.sub().price, alice.sub().next_price) == (3000, None)

    bob.advance(utc(2026, 4, 15, 9))
    bob.advance(utc(2026, 5, 15, 9))
    assert bob.charged() == [3500, 3500, 3500]
    assert next_renewal_shown(world, bob) == 3500

    # Lowering it later doesn't reprice either: each keeps the price they were sold.
    world.ctx.catalog = load_catalog_text(edited(STANDARD_MONTHLY, "prices: {monthly: 2500,"))
    alice.advance(utc(2026, 6, 10, 10))
    bob.advance(utc(2026, 6, 15, 9))
    assert alice.charged()[-1] == 3000 and bob.charged()[-1] == 3500
    for shopper in (alice, bob):
        shopper.assert_ledger_balanced()
    ledger_check_passes(world.db)


def test_catalog_migrate_moves_a_cohort_from_the_first_renewal_after_the_notice(world, tmp_path):
    new_file = tmp_path / "catalog.yaml"
    new_file.write_text(edited(STANDARD_MONTHLY, "prices: {monthly: 3500,"), encoding="utf-8")

    # Carol bought at $30 in March; by April 1st the catalog says $35.
    carol = world.shopper(utc(2026, 3, 10, 10))
    subscribe(world.ctx, carol.id, "standard", "monthly")
    dan = world.shopper(utc(2026, 3, 10, 10))  # on another term: not in the cohort
    subscribe(world.ctx, dan.id, "standard", "yearly")
    world.ctx.catalog = load_catalog_text(new_file.read_text(encoding="utf-8"), source=str(new_file))
    carol.advance(utc(2026, 4, 1, 12))

    migrate = ["catalog", "migrate", "--plan", "standard", "--term", "monthly", "--notice-days", "14",
               "--catalog", str(new_file), "--database-url", world.db.url]
    dry = CliRunner().invoke(app, [*migrate, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "1 would be moved" in dry.stdout
    assert carol.events("subscription.price_changing") == []  # a dry run changes nothing

    done = CliRunner().invoke(app, migrate)  # --price defaults to the catalog's: $35
    assert done.exit_code == 0, done.output
    assert "standard (monthly) to $35.00 with 14 days' notice: 1 live subscription" in done.stdout
    assert "1 moved" in done.stdout
    [event] = carol.events("subscription.price_changing")
    # April 10th is 9 days away, less than the notice: the new price starts on May 10th.
    assert event.data == {"subscription": carol.sub().id, "plan": "standard", "term": "monthly",
                          "old_price": 3000, "new_price": 3500, "currency": "usd",
                          "effective_at": "2026-05-10T10:00:00Z", "notice_days": 14}
    sub = carol.sub()
    assert (sub.price, sub.next_price, sub.next_price_from) == (3000, 3500, utc(2026, 5, 10, 10))
    assert dan.events("subscription.price_changing") == []

    again = CliRunner().invoke(app, migrate)  # idempotent: nothing recorded twice
    assert again.exit_code == 0, again.output
    assert "1 already at that price or moved to it" in again.stdout
    assert len(carol.events("subscription.price_changing")) == 1

    # The renewal inside the notice period keeps the old price once; the next one is moved.
    assert next_renewal_shown(world, carol) == 3000
    carol.advance(utc(2026, 4, 10, 10))
    assert carol.charged() == [3000, 3000]
    assert next_renewal_shown(world, carol) == 3500
    carol.advance(utc(2026, 5, 10, 10))
    assert carol.charged() == [3000, 3000, 3500]
    carol.advance(utc(2026, 6, 10, 10))
    assert carol.charged() == [3000, 3000, 3500, 3500]
    sub = carol.sub()
    assert (sub.price, sub.next_price, sub.next_price_from) == (3500, None, None)
    assert invoice_lines(carol)[-1] == ("renewal", 3500)
    dan.advance(utc(2026, 4, 10, 10))
    assert dan.charged() == [25200]

    # Moving the cohort once more at the price they now pay does nothing.
    last = CliRunner().invoke(app, migrate)
    assert "1 already at that price" in last.stdout
    with world.db.transaction(readonly=True) as session:
        assert len(list(session.scalars(select(Event).where(Event.type == "subscription.price_changing")))) == 1
    carol.assert_ledger_balanced()
    ledger_check_passes(world.db)


def test_a_plan_off_sale_renews_its_subscribers_but_cannot_be_bought(world):
    erin = world.shopper(utc(2026, 1, 31, 8))
    subscribe(world.ctx, erin.id, "basic", "monthly")
    world.ctx.catalog = load_catalog_text(edited("    name: Basic\n", "    name: Basic\n    on_sale: false\n"))
    assert world.ctx.catalog.plans["basic"].on_sale is False

    # Month by month, across February's end: Basic renews at its price, with its credits.
    erin.advance(utc(2026, 2, 28, 8))
    erin.advance(utc(2026, 3, 31, 8))
    assert erin.charged() == [900, 900, 900]
    assert erin.plan() == "basic" and erin.sub().status == "active"
    assert erin.plan_credits() == world.ctx.catalog.plans["basic"].monthly_credits

    frank = world.shopper(utc(2026, 3, 1, 8))
    with pytest.raises(Conflict) as refused:
        subscribe(world.ctx, frank.id, "basic", "monthly")
    assert (refused.value.code, refused.value.param) == ("plan_not_on_sale", "plan")
    assert frank.subscriptions() == [] and frank.charged() == []

    # Erin can't buy Basic again on another term, but can move up to a plan on sale.
    with pytest.raises(Conflict) as refused:
        change_subscription(world.ctx, erin.sub().id, plan="basic", term="yearly")
    assert refused.value.code == "plan_not_on_sale"
    with world.db.transaction() as session:
        quote = preview_change(world.ctx, session, erin.sub().id, plan="standard", term="monthly")
        assert quote.amount_due > 0
    with world.db.transaction(readonly=True) as session:
        page = billing_page(world.ctx, session, erin.id)
    offered = {(card.plan.code, card.term) for group in page.term_groups for card in group.cards}
    assert ("basic", "monthly") in offered  # her own card, marked current
    assert ("basic", "yearly") not in offered and ("standard", "monthly") in offered
    erin.assert_ledger_balanced()
    ledger_check_passes(world.db)
