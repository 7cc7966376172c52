"""`creditflow catalog check` reports every error of a catalog file, each with its file, line
and field; `creditflow ledger check` says what it checked, how much, and each problem. Both exit
1 on a problem."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from creditflow.catalog.loader import CatalogError, check_catalog, load_catalog_text
from creditflow.cli import app

GOOD = """\
currency: usd
free:
  daily_credits: "100"
  features: [standard_models]
plans:
  - code: basic
    name: Basic
    rank: 1
    monthly_credits: "2000"
    features: [standard_models, pro_models]
    prices: {monthly: 900, yearly: 7560}
  - code: standard
    name: Standard
    rank: 2
    monthly_credits: "8000"
    features: [standard_models, pro_models]
    prices: {monthly: 3000}
bundles:
  - {code: credits_1000, name: "1,000 credits", credits: "1000", price: 1000}
features:
  standard_models: {}
  pro_models: {requires_subscription: true}
policies:
  proration: time
"""

# Four mistakes in four places: a price as a float (line 11), a plan with a duplicate rank
# (line 14), a bundle with no credits (line 19), an unknown proration (line 24).
BAD = (GOOD.replace("prices: {monthly: 900, yearly: 7560}", "prices: {monthly: 9.0, yearly: 7560}")
           .replace("    rank: 2\n", "    rank: 1\n")
           .replace('credits: "1000", price: 1000', 'credits: "0", price: 1000')
           .replace("proration: time", "proration: linear"))


def test_the_check_reports_every_error_in_line_order(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(BAD)
    assert check_catalog(path) == [
        f"{path}:11: plans[0].prices.monthly: price must be an integer count of minor units, got 9.0",
        f"{path}:14: plans[1].rank: same rank as plan 'basic' (line 8); ranks order the tiers",
        f"{path}:19: bundles[0].credits: credits must be more than 0",
        f"{path}:24: policies.proration: unknown value 'linear' (expected one of: time, none)",
    ]


def test_loading_still_stops_at_the_first_error():
    with pytest.raises(CatalogError) as caught:
        load_catalog_text(BAD, "catalog.yaml")
    assert caught.value.line == 11


def test_catalog_check_prints_every_error_and_exits_1(tmp_path):
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    bad.write_text(BAD)
    good.write_text(GOOD)
    result = CliRunner().invoke(app, ["catalog", "check", str(bad)])
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert [line.split(": ", 2)[:2] for line in errors[:-1]] == [
        [f"{bad}:11", "plans[0].prices.monthly"], [f"{bad}:14", "plans[1].rank"],
        [f"{bad}:19", "bundles[0].credits"], [f"{bad}:24", "policies.proration"]]
    assert errors[-1] == f"{bad}: 4 problems"

    result = CliRunner().invoke(app, ["catalog", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{good}: ok (2 plans, 1 bundles, 2 features)"

    result = CliRunner().invoke(app, ["catalog", "check", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert "cannot read the catalog" in result.stderr


def test_a_yaml_error_is_one_located_problem(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(GOOD.replace("currency: usd", "currency: [usd"))
    problems = check_catalog(path)
    assert len(problems) == 1 and problems[0].startswith(f"{path}:") and "not valid YAML" in problems[0]


def test_ledger_check_says_what_it_checked_and_exits_1_on_a_problem(api):
    customer, _ = api.subscribed()
    api.ok("POST", f"/v1/customers/{customer['id']}/credits/spend",
           {"amount": "5", "feature": "pro_models", "reference": "r1"})
    url = api.ctx.db.url
    result = CliRunner().invoke(app, ["ledger", "check", "--database-url", url])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].startswith("Checked the credit ledger: 1 credit accounts, ")
    assert "ledger entries" in out[0] and "1 spends and holds" in out[0]
    assert sum(line.strip().startswith("OK") for line in out) == 7
    assert out[-1] == "ledger check passed"

    api.ok("POST", f"/v1/customers/{customer['id']}/credits/spend",
           {"amount": "2", "feature": "pro_models", "reference": "r2"})
    result = CliRunner().invoke(app, ["ledger", "check", "--database-url", url])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0].startswith("Checked what changed since the last check (ledger entry ")
    assert "1 credit accounts" in out[0] and "1 new ledger entries" in out[0]
    assert out[-2].startswith("Verified through ledger entry ") and out[-1] == "ledger check passed"

    with api.ctx.db.transaction() as session:  # a change no ledger entry records: only --full sees it
        session.execute(text("UPDATE credit_spends SET amount = amount + 1 WHERE reference = 'r1'"))
    assert CliRunner().invoke(app, ["ledger", "check", "--database-url", url]).exit_code == 0
    result = CliRunner().invoke(app, ["ledger", "check", "--full", "--database-url", url])
    assert result.exit_code == 1
    failed = [line for line in result.stdout.splitlines() if line.strip().startswith("FAIL")]
    assert failed == ["  FAIL  spent equals what the spends and settled holds took: 1 problem"]
    assert f"{customer['id']}: spent 7 but the spends add up to 7.001" in result.stdout
    assert result.stderr.strip() == "ledger check FAILED: 1 problem(s)"
