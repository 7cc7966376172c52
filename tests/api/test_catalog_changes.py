"""Changing the catalog in production, through the API and the commands: `on_sale: false` in
the catalog listing and refused purchases, `creditflow catalog diff` and its exit code, and
`serve` / `worker` refusing to start on a file that drops a plan someone is still on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from api_kit import assert_error
from sqlalchemy import text
from typer.testing import CliRunner

from creditflow.catalog.loader import default_catalog_path, load_catalog_text
from creditflow.cli import app
from creditflow.subscription.models import Subscription

SAMPLE = Path(default_catalog_path()).read_text(encoding="utf-8")


def edited(*pairs: tuple[str, str]) -> str:
    catalog = SAMPLE
    for old, new in pairs:
        assert catalog.count(old) == 1, old
        catalog = catalog.replace(old, new)
    return catalog


BASIC_OFF_SALE = ("    name: Basic\n", "    name: Basic\n    on_sale: false\n")
BUNDLE_OFF_SALE = ('credits: "1000", price: 1000}', 'credits: "1000", price: 1000, on_sale: false}')
WITHOUT_BASIC = (SAMPLE[SAMPLE.index("  - code: basic"):SAMPLE.index("  - code: standard")], "")


def test_a_plan_off_sale_is_listed_as_such_and_cannot_be_bought(any_api):
    api = any_api
    customer, sub = api.subscribed("basic", "monthly")
    api.ctx.catalog = load_catalog_text(edited(BASIC_OFF_SALE, BUNDLE_OFF_SALE))

    listing = api.ok("GET", "/v1/catalog")
    assert {plan["code"]: plan["on_sale"] for plan in listing["plans"]} == {
        "basic": False, "standard": True, "ultimate": True, "creator": True}
    assert {b["code"]: b["on_sale"] for b in listing["bundles"]}["credits_1000"] is False

    newcomer = api.customer()
    assert_error(api.post("/v1/subscriptions", {"customer": newcomer["id"], "plan": "basic", "term": "monthly"}),
                 409, "plan_not_on_sale", "plan")
    assert_error(api.post(f"/v1/subscriptions/{sub['id']}/preview_change", {"plan": "basic", "term": "yearly"}),
                 409, "plan_not_on_sale", "plan")
    assert_error(api.post(f"/v1/subscriptions/{sub['id']}/change", {"plan": "basic", "term": "yearly"}),
                 409, "plan_not_on_sale", "plan")
    assert_error(api.post(f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_1000"}),
                 409, "bundle_not_on_sale", "bundle")
    assert api.ok("GET", f"/v1/customers/{newcomer['id']}")["plan"] == "free"
    # The subscriber keeps the plan, and can still buy what is on sale.
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["plan"] == "basic"
    api.ok("POST", f"/v1/customers/{customer['id']}/top_ups", {"bundle": "credits_5000"})
    api.ok("POST", f"/v1/subscriptions/{sub['id']}/preview_change", {"plan": "standard", "term": "monthly"})


def _write(tmp_path: Path, name: str, catalog: str) -> str:
    path = tmp_path / name
    path.write_text(catalog, encoding="utf-8")
    return str(path)


def test_catalog_diff_says_what_changes_for_whom_and_fails_on_a_dropped_plan(api, tmp_path):
    for plan, term in (("basic", "monthly"), ("basic", "yearly"), ("standard", "monthly"), ("standard", "monthly")):
        api.subscribed(plan, term)
    old = _write(tmp_path, "old.yaml", SAMPLE)
    repriced = _write(tmp_path, "repriced.yaml", edited(
        ("prices: {monthly: 3000,", "prices: {monthly: 3500,"), BASIC_OFF_SALE, BUNDLE_OFF_SALE,
        ('monthly_credits: "8000"', 'monthly_credits: "9000"')))
    url = api.ctx.db.url

    result = CliRunner().invoke(app, ["catalog", "diff", old, repriced, "--database-url", url])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{old} -> {repriced}: 4 changes",
        "  plan basic: taken off sale; 2 subscriptions on it: they keep it; nobody new can buy it",
        "  plan standard monthly: price $30.00 -> $35.00; 2 subscriptions on it: each keeps the price it was sold "
        "at until moved with `creditflow catalog migrate`",
        "  plan standard monthly_credits: credits 8000 -> 9000; 2 subscriptions on it: the new allotment from each "
        "one's next monthly grant",
        "  bundle credits_1000: taken off sale",
    ]

    dropped = _write(tmp_path, "dropped.yaml", edited(WITHOUT_BASIC, ("yearly: 25200", "")))
    result = CliRunner().invoke(app, ["catalog", "diff", old, dropped, "--database-url", url])
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines()[1:] == [
        "  plan basic: removed; 2 subscriptions on it: stranded, nothing could renew them",
        "  plan standard yearly: no longer sold on this term (was $252.00); 0 subscriptions on it",
    ]
    assert result.stderr.splitlines() == [
        "error: plan 'basic' is not in the catalog, but 1 live subscription is on basic (monthly)",
        "error: plan 'basic' is not in the catalog, but 1 live subscription is on basic (yearly)",
        f"error: the service refuses to start on {dropped}: keep those plans and terms in it "
        "(with on_sale: false to stop selling them)",
    ]

    same = CliRunner().invoke(app, ["catalog", "diff", old, old, "--database-url", url])
    assert (same.exit_code, same.stdout) == (0, f"{old} -> {old}: no changes\n")
    broken = _write(tmp_path, "broken.yaml", SAMPLE.replace("currency: usd", "currency: 12"))
    invalid = CliRunner().invoke(app, ["catalog", "diff", old, broken, "--database-url", url])
    assert invalid.exit_code == 2 and "currency" in invalid.stderr


def test_the_worker_and_the_server_refuse_a_catalog_that_strands_subscribers(api, tmp_path):
    api.subscribed("basic", "monthly")
    api.subscribed("basic", "monthly")
    url = api.ctx.db.url
    dropped = _write(tmp_path, "dropped.yaml", edited(WITHOUT_BASIC))
    env = {**os.environ, "CREDITFLOW_DATABASE_URL": url, "CREDITFLOW_CATALOG": dropped,
           "CREDITFLOW_SECRET_KEY": "s3cret"}
    refusal = (f"error: refusing to start: {dropped}: plan 'basic' is not in the catalog, but 2 live "
               f"subscriptions are on basic (monthly).")

    for command in (["worker", "--once"], ["serve", "--port", "1", "--no-worker"]):
        run = subprocess.run([sys.executable, "-m", "creditflow.cli", *command], capture_output=True, text=True,
                             env=env, timeout=120)
        assert run.returncode == 1, (command, run.stdout, run.stderr)
        assert refusal in run.stderr, run.stderr
        assert "on_sale: false" in run.stderr

    # Kept in the file but off sale, the plan is served: the worker runs.
    kept = _write(tmp_path, "kept.yaml", edited(BASIC_OFF_SALE))
    run = subprocess.run([sys.executable, "-m", "creditflow.cli", "worker", "--once"], capture_output=True,
                         text=True, env={**env, "CREDITFLOW_CATALOG": kept}, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_start_fills_in_the_prices_of_subscriptions_from_before_prices_were_kept(api):
    _, sub = api.subscribed("standard", "monthly")
    with api.ctx.db.transaction() as session:  # as the migration leaves a row that existed before it
        session.execute(text("UPDATE subscriptions SET price = NULL"))
    env = {**os.environ, "CREDITFLOW_DATABASE_URL": api.ctx.db.url}
    env.pop("CREDITFLOW_CATALOG", None)
    run = subprocess.run([sys.executable, "-m", "creditflow.cli", "worker", "--once"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    with api.ctx.db.transaction(readonly=True) as session:
        assert session.get(Subscription, sub["id"], populate_existing=True).price == 3000


def test_the_subscription_shows_its_price_as_sold_and_a_moved_price(any_api):
    api = any_api
    customer, sub = api.subscribed("standard", "monthly")
    assert (sub["price"], sub["price_change"]) == (3000, None)
    api.ctx.catalog = load_catalog_text(edited(("prices: {monthly: 3000,", "prices: {monthly: 3500,")))
    assert api.ok("GET", f"/v1/subscriptions/{sub['id']}")["price"] == 3000

    from creditflow.subscription.reprice import MOVED, move_to_price, price_move

    move = price_move(api.ctx.catalog, "standard", "monthly", None, 0)  # the catalog's $35, at the next renewal
    with api.ctx.db.transaction() as session:
        assert move_to_price(api.ctx, session, sub["id"], move) == MOVED
    shown = api.ok("GET", f"/v1/customers/{customer['id']}/subscription")
    assert shown["price"] == 3000
    assert shown["price_change"] == {"price": 3500, "effective_at": sub["current_term_end"]}
