"""The `creditflow` command: serve, worker, migrate, catalog check, ledger check, demo."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

import typer

from creditflow.kit.errors import CreditflowError

app = typer.Typer(help="creditflow: subscriptions-and-credits billing engine", no_args_is_help=True)
catalog_app = typer.Typer(help="Work with catalog files", no_args_is_help=True)
ledger_app = typer.Typer(help="Check the credit ledger", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(ledger_app, name="ledger")


def _database_url(url: str | None) -> str:
    from creditflow.kit.db.session import default_database_url

    return url or default_database_url()


@app.command()
def migrate(database_url: str = typer.Option(None, "--database-url", help="Default: CREDITFLOW_DATABASE_URL")):
    """Apply pending database migrations."""
    from creditflow.kit.db.migrate import current, upgrade

    url = _database_url(database_url)
    upgrade(url)
    typer.echo(f"database at revision {current(url)}")


@catalog_app.command("check")
def catalog_check(path: Path = typer.Argument(..., help="Catalog YAML file")):
    """Validate a catalog file; errors name the file, the line and the field."""
    from creditflow.catalog.loader import load_catalog

    try:
        catalog = load_catalog(path)
    except CreditflowError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"{path}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{path}: ok ({len(catalog.plans)} plans, {len(catalog.bundles)} bundles, "
               f"{len(catalog.features)} features)")


@ledger_app.command("check")
def ledger_check(database_url: str = typer.Option(None, "--database-url")):
    """Verify credit conservation (K6) and that stored balances equal their entries."""
    from creditflow.credits.check import check_ledger
    from creditflow.kit.db import Database

    db = Database(_database_url(database_url))
    with db.transaction(readonly=True) as session:
        problems = check_ledger(session)
    db.dispose()
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        typer.echo(f"ledger check FAILED: {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo("ledger check passed")


@app.command()
def worker(
    database_url: str = typer.Option(None, "--database-url"),
    interval: float = typer.Option(1.0, help="Seconds to sleep when nothing is due"),
    once: bool = typer.Option(False, help="Run what is due now, then exit"),
    batch: int = typer.Option(100, help="Subscriptions claimed per round"),
):
    """Run due work: renewals, monthly grants and expiries, dunning, reconciliation."""
    from creditflow.context import build_context
    from creditflow.kit.db import Database
    from creditflow.worker.runner import run_forever, tick

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ctx = build_context(Database(_database_url(database_url)))
    if once:
        typer.echo(f"ran {tick(ctx, batch=batch)} piece(s) of work")
        return
    try:
        run_forever(ctx, interval=interval, batch=batch)
    except KeyboardInterrupt:
        pass


@app.command()
def demo(database_url: str = typer.Option(None, "--database-url", help="Default: a fresh demo.db")):
    """Subscribe a demo customer on a test clock to Standard quarterly, advance four months, and
    print the invoices and credit grants."""
    from sqlalchemy import select

    from creditflow.context import build_context
    from creditflow.credits.models import CreditEntry, CreditLot
    from creditflow.customer.service import create_customer, create_test_clock, set_payment_method
    from creditflow.invoicing.models import Invoice
    from creditflow.kit.db import Database
    from creditflow.kit.db.migrate import upgrade
    from creditflow.kit.ids import new_id
    from creditflow.kit.money import format_money
    from creditflow.subscription.service import subscribe
    from creditflow.worker.testclock import advance_test_clock

    if database_url is None:
        Path("demo.db").unlink(missing_ok=True)
        database_url = "sqlite:///demo.db"
    upgrade(database_url)
    ctx = build_context(Database(database_url))
    start = datetime(2026, 1, 15, 10, 0, tzinfo=timezone.utc)
    with ctx.db.transaction() as session:
        clock = create_test_clock(session, start, now=start)
        customer = create_customer(ctx, session, external_id=new_id("demo"), email="demo@example.com",
                                   name="Demo Customer", test_clock=clock.id)
    set_payment_method(ctx, customer.id, "pm_card_ok")
    sub = subscribe(ctx, customer.id, "standard", "quarterly")
    typer.echo(f"{customer.id} subscribed to Standard quarterly on {start:%Y-%m-%d %H:%M} UTC ({sub.id})")
    end = datetime(2026, 5, 15, 10, 0, tzinfo=timezone.utc)
    advance_test_clock(ctx, clock.id, end)
    typer.echo(f"test clock advanced to {end:%Y-%m-%d %H:%M} UTC\n\nInvoices:")
    with ctx.db.transaction(readonly=True) as session:
        for inv in session.scalars(select(Invoice).where(Invoice.customer_id == customer.id).order_by(Invoice.number)):
            typer.echo(f"  #{inv.number:<4} {inv.created_at:%Y-%m-%d}  {inv.purpose:<20} "
                       f"{format_money(inv.total, inv.currency):>10}  {inv.status}")
        typer.echo("\nCredit grants:")
        lots = session.scalars(select(CreditLot).where(CreditLot.customer_id == customer.id)
                               .order_by(CreditLot.created_at))
        for lot in lots:
            expires = f"expires {lot.expires_at:%Y-%m-%d}" if lot.expires_at else "never expires"
            typer.echo(f"  {lot.created_at:%Y-%m-%d}  {lot.kind:<13} {str(lot.granted):>8} credits, {expires}")
    ctx.db.dispose()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
