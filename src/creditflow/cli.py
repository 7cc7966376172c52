"""The `creditflow` command: serve, worker, migrate, catalog check, diff and migrate, ledger check, archive, demo."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from creditflow.kit.errors import CreditflowError
from creditflow.kit.process import limit_malloc_arenas

def _flags_without_a_type(option_class) -> None:
    """Typer's help labels every option with its type, flags included (`--no-worker <bool>`,
    `--help <bool>`); a flag takes no value, so its help shows none."""
    show_type = option_class.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag else show_type(self, ctx)

    option_class.display_type_rich = display_type_rich


_flags_without_a_type(typer.core.TyperOption)

app = typer.Typer(help="creditflow: subscriptions-and-credits billing engine", no_args_is_help=True)
catalog_app = typer.Typer(help="Work with catalog files", no_args_is_help=True)
ledger_app = typer.Typer(help="Check the credit ledger", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")


# Options that several commands take.
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help="Default: CREDITFLOW_DATABASE_URL")]
Host = Annotated[str, typer.Option(help="Address to listen on")]
Port = Annotated[int, typer.Option(help="Port to listen on")]


def _database_url(url: str | None) -> str:
    from creditflow.kit.db.session import default_database_url

    return url or default_database_url()


def _log_to_stderr(level: str = "info") -> None:
    """Structured log lines on stderr (kit/logs.py): JSON unless stderr is a terminal, or as
    CREDITFLOW_LOG_FORMAT says."""
    from creditflow.kit.logs import configure_logging

    try:
        configure_logging(level)
    except ValueError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def migrate(database_url: DatabaseUrl = None):
    """Apply pending database migrations."""
    from creditflow.migrations.runner import current, upgrade

    url = _database_url(database_url)
    upgrade(url)
    typer.echo(f"database at revision {current(url)}")
    created = _ensure_partitions(url)
    if created:
        typer.echo(f"partitions created: {', '.join(created)}")


def _ensure_partitions(url: str) -> list[str]:
    """PostgreSQL: this month's and the next two months' partitions of the history tables, so
    that a fresh install works before a worker has run (the worker keeps them ahead)."""
    from datetime import datetime, timezone

    from creditflow.kit.db import Database
    from creditflow.kit.db.partitions import ensure_ahead

    db = Database(url)
    try:
        if not db.is_postgres:
            return []
        return db.run(lambda session: ensure_ahead(session.connection(), datetime.now(timezone.utc)))
    finally:
        db.dispose()


@catalog_app.command("check")
def catalog_check(path: Path = typer.Argument(..., help="Catalog YAML file")):
    """Validate a catalog file: every error, each naming the file, the line and the field; exit 1
    if there is any."""
    from creditflow.catalog.loader import check_catalog, load_catalog

    problems = check_catalog(path)
    if problems:
        for problem in problems:
            typer.echo(problem, err=True)
        typer.echo(f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", err=True)
        raise typer.Exit(1)
    catalog = load_catalog(path)
    typer.echo(f"{path}: ok ({len(catalog.plans)} plans, {len(catalog.bundles)} bundles, "
               f"{len(catalog.features)} features)")


@catalog_app.command("diff")
def catalog_diff(
    old: Path = typer.Argument(..., help="The catalog file in use"),
    new: Path = typer.Argument(..., help="The catalog file to compare with it"),
    database_url: DatabaseUrl = None,
):
    """Say what NEW changes compared with OLD (plans, terms, prices, sale, credits, features,
    bundles, policies) and how many live subscriptions each change concerns; exit 1 if NEW drops
    a plan or term someone is still on (the service would refuse to start on it), 2 if a file is
    invalid."""
    from creditflow.catalog.diff import diff_catalogs, report_lines, stranded
    from creditflow.catalog.loader import CatalogError, load_catalog
    from creditflow.kit.db import Database
    from creditflow.subscription.cohorts import live_counts, scheduled_counts

    try:
        before, after = load_catalog(old), load_catalog(new)
    except CatalogError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from sqlalchemy.exc import DBAPIError

    db = Database(_database_url(database_url))
    try:
        with db.transaction(readonly=True) as session:
            on, scheduled = live_counts(session), scheduled_counts(session)
    except DBAPIError as exc:
        typer.echo(f"error: could not count the subscriptions ({exc.orig}); has `creditflow migrate` run?", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    changes = diff_catalogs(before, after)
    typer.echo(f"{old} -> {new}: {len(changes) or 'no'} change{'s' if len(changes) != 1 else ''}")
    for line in report_lines(changes, on, after.currency):
        typer.echo(f"  {line}")
    blocking = stranded(after, on + scheduled)
    if blocking:
        for item in blocking:
            typer.echo(f"error: {item.sentence()}", err=True)
        typer.echo(f"error: the service refuses to start on {new}: keep those plans and terms in it "
                   f"(with on_sale: false to stop selling them)", err=True)
        raise typer.Exit(1)


@catalog_app.command("migrate")
def catalog_migrate(
    plan: str = typer.Option(..., "--plan", help="The plan whose subscriptions move"),
    term: str = typer.Option(..., "--term", help="Their term: monthly, quarterly or yearly"),
    price: int | None = typer.Option(None, "--price", min=0,
                                     help="The new price per charge, in minor units (default: the catalog's)"),
    notice_days: int = typer.Option(30, "--notice-days", min=0,
                                    help="The new price applies from the first renewal at least this many days "
                                         "ahead"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would happen, change nothing"),
    catalog: Path | None = typer.Option(None, "--catalog", help="Catalog file (default: CREDITFLOW_CATALOG)"),
    database_url: DatabaseUrl = None,
):
    """Move the live subscriptions of one plan and term to a new price, from each one's first
    renewal at least --notice-days ahead (a sooner renewal charges the old price once more),
    recording a subscription.price_changing event for each (the worker emails the notice).
    Running it again changes nothing more."""
    from creditflow.kit.db import Database
    from creditflow.kit.money import format_money
    from creditflow.subscription.reprice import cohort, move_to_price, price_move
    from creditflow.wiring import build_context

    ctx = build_context(Database(_database_url(database_url)), catalog_path=str(catalog) if catalog else None)
    try:
        move = price_move(ctx.catalog, plan, term, price, notice_days)
        with ctx.db.transaction(readonly=True) as session:
            ids = cohort(session, move.plan, move.term)
        outcomes: dict[str, int] = {}
        for sub_id in ids:
            try:
                with ctx.db.transaction() as session:
                    outcome = move_to_price(ctx, session, sub_id, move)
                    if dry_run:
                        raise _DryRun(outcome)
            except _DryRun as done:
                outcome = done.args[0]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    except CreditflowError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        ctx.db.dispose()
    would = "would be " if dry_run else ""
    typer.echo(f"{move.plan} ({move.term}) to {format_money(move.price, ctx.catalog.currency)} with "
               f"{move.notice_days} days' notice: {len(ids)} live subscription{'s' if len(ids) != 1 else ''}")
    for outcome, label in (("moved", f"{would}moved, each notified (subscription.price_changing)"),
                           ("already", "already at that price or moved to it: left alone"),
                           ("ending", "cancelled at the end of their term: left alone"),
                           ("leaving", "changing plan or term at their renewal: left alone"),
                           ("gone", "no longer on that plan and term")):
        if outcomes.get(outcome):
            typer.echo(f"  {outcomes[outcome]} {label}")


class _DryRun(Exception):
    """Rolls a dry run's unit of work back, carrying what it would have done."""


@ledger_app.command("check")
def ledger_check(
    database_url: DatabaseUrl = None,
    full: bool = typer.Option(False, "--full", help="Check every customer, not only what changed since the last check"),
):
    """Verify that granted = spent + expired + held + available and that stored balances equal
    their entries; list what was checked and any problem; exit 1 on a problem.

    Without --full, only the customers with ledger entries since the last clean check are
    checked, against the sums that check saved; the first check is always full."""
    from creditflow.credits.check import CHECKS, run_ledger_check
    from creditflow.kit.db import Database

    shown = []

    def progress(done: int, total: int) -> None:  # on a ledger of more than one range of accounts
        if done < total or shown:
            shown.append(done)
            typer.echo(f"  ... {done} of {total} credit accounts", err=True)

    db = Database(_database_url(database_url))
    try:
        run = run_ledger_check(db, full=full, progress=progress)
    finally:
        db.dispose()
    report = run.report
    if report.since is None:
        typer.echo(f"Checked the credit ledger: {report.customers} credit accounts, {report.lots} lots, "
                   f"{report.entries} ledger entries, {report.spends} spends and holds.")
    else:
        typer.echo(f"Checked what changed since the last check (ledger entry {report.since}): "
                   f"{report.customers} credit accounts, {report.lots} lots, {report.entries} new ledger "
                   f"entries, {report.spends} spends and holds. (--full checks everything.)")
    for name, what in CHECKS:
        problems = report.found.get(name, [])
        typer.echo(f"  {'OK  ' if not problems else 'FAIL'}  {what}"
                   + (f": {len(problems)} problem{'s' if len(problems) != 1 else ''}" if problems else ""))
        for problem in problems:
            typer.echo(f"        {problem}")
    if report.problems:
        typer.echo(f"ledger check FAILED: {len(report.problems)} problem(s)", err=True)
        raise typer.Exit(1)
    if run.saved:
        typer.echo(f"Verified through ledger entry {run.through}: the next check starts there.")
    typer.echo("ledger check passed")


@app.command()
def archive(
    out: Path = typer.Option(..., "--out", help="Directory for the export files (one .jsonl.gz and manifest per month)"),
    before: str | None = typer.Option(None, "--before", help="Archive the months before this one (YYYY-MM, UTC)"),
    keep_months: int | None = typer.Option(None, "--keep-months", min=0,
                                           help="Archive the months before the last N (the current month counts)"),
    skip_ledger: bool = typer.Option(False, "--skip-ledger", help="Archive events and webhook deliveries only"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be archived; change nothing"),
    database_url: DatabaseUrl = None,
):
    """Export old months of events, webhook deliveries and ledger entries to files, then remove
    them from the database (PostgreSQL: drop the month's partition; SQLite: delete its rows).

    Never a pending delivery, nor an event not yet sent or notified. Ledger entries go only when
    `creditflow ledger check` has verified them; their sums are kept, so balances and the ledger
    check stay right. Safe to run again after a crash."""
    from datetime import datetime, timezone

    from creditflow.archive.service import TABLES, ArchiveRefused, archive as run_archive, parse_month
    from creditflow.kit.db import Database
    from creditflow.kit.db.partitions import add_months, month_of

    if (before is None) == (keep_months is None):
        typer.echo("error: give either --before YYYY-MM or --keep-months N", err=True)
        raise typer.Exit(2)
    current = month_of(datetime.now(timezone.utc))
    if before is not None:
        try:
            first_kept = parse_month(before, "--before")
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    else:
        first_kept = add_months(current, -max(keep_months - 1, 0))
    if first_kept > current:
        typer.echo(f"error: --before {first_kept:%Y-%m} would archive the current month ({current:%Y-%m}); "
                   "only past months can be archived", err=True)
        raise typer.Exit(2)
    tables = tuple(t for t in TABLES if not (skip_ledger and t == "credit_entries"))
    db = Database(_database_url(database_url))
    try:
        plan = run_archive(db, out, first_kept, tables=tables, dry_run=dry_run, echo=typer.echo)
    except ArchiveRefused as exc:
        typer.echo(f"archive refused: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    if not plan:
        typer.echo(f"nothing to archive before {first_kept:%Y-%m}")


@app.command()
def worker(
    database_url: DatabaseUrl = None,
    interval: float = typer.Option(1.0, help="Seconds to sleep when nothing is due"),
    once: bool = typer.Option(False, help="Run what is due now, then exit"),
    batch: int = typer.Option(100, help="Subscriptions claimed per round"),
):
    """Run due work: renewals, monthly grants and expiries, dunning, reconciliation."""
    from creditflow.wiring import build_context
    from creditflow.kit.db import Database
    from creditflow.worker.runner import run_forever, tick

    limit_malloc_arenas()
    _log_to_stderr()
    ctx = build_context(Database(_database_url(database_url)))
    _refuse_stranding_catalog(ctx)
    if once:
        typer.echo(f"ran {tick(ctx, batch=batch)} piece(s) of work")
        return
    try:
        run_forever(ctx, interval=interval, batch=batch)
    except KeyboardInterrupt:
        pass


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    no_migrate: bool = typer.Option(False, "--no-migrate", help="Don't apply pending migrations at start"),
    no_worker: bool = typer.Option(False, "--no-worker", help="Leave due work to `creditflow worker` processes"),
    workers: int = typer.Option(1, help="API processes (uvicorn workers)"),
    database_url: DatabaseUrl = None,
    log_level: str = typer.Option("info", help="uvicorn log level"),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log",
                                    help="Log every request (one line each; default: CREDITFLOW_ACCESS_LOG, on)"),
):
    """Serve the HTTP API (and run the worker in the background unless --no-worker)."""
    from creditflow.api.server import serve as run_server
    from creditflow.api.settings import Settings
    from creditflow.wiring import build_context
    from creditflow.kit.db import Database
    from creditflow.migrations.runner import upgrade

    limit_malloc_arenas()
    _log_to_stderr(log_level)
    url = _database_url(database_url)
    if not no_migrate:
        upgrade(url)
        _ensure_partitions(url)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    ctx = build_context(Database(url))
    _refuse_stranding_catalog(ctx)
    run_server(ctx, settings, host=host, port=port, worker=not no_worker, workers=workers, log_level=log_level,
               access_log=access_log)


def _refuse_stranding_catalog(ctx) -> None:
    """Don't start on a catalog that drops a plan someone is still on (it could not renew them)."""
    from creditflow.subscription.cohorts import CatalogStrandsSubscribers
    from creditflow.wiring import check_catalog_in_use

    try:
        check_catalog_in_use(ctx)
    except CatalogStrandsSubscribers as exc:
        typer.echo(f"error: refusing to start: {exc.message}", err=True)
        ctx.db.dispose()
        raise typer.Exit(1) from None


@keys_app.command("create")
def keys_create(
    scope: str = typer.Option(..., "--scope", help="server, support, admin or metrics (reads GET /metrics only)"),
    database_url: DatabaseUrl = None,
):
    """Create an API key and print its secret (shown this once; only its hash is stored)."""
    from sqlalchemy.exc import DBAPIError

    from creditflow.auth.service import create_api_key
    from creditflow.kit.clock import SystemClock
    from creditflow.kit.db import Database

    db = Database(_database_url(database_url))
    try:
        with db.transaction() as session:
            _, secret = create_api_key(session, scope, now=SystemClock().now())
    except CreditflowError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None
    except DBAPIError as exc:
        typer.echo(f"could not create the key ({exc.orig}); has `creditflow migrate` run?", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo(secret)


@keys_app.command("list")
def keys_list(
    all_keys: bool = typer.Option(False, "--all", help="Include revoked keys"),
    database_url: DatabaseUrl = None,
):
    """List API keys: id, scope, the secret's first characters, created, revoked (never the secret)."""
    from creditflow.auth.service import list_api_keys
    from creditflow.kit.clock import format_instant
    from creditflow.kit.db import Database

    db = Database(_database_url(database_url))
    try:
        with db.transaction(readonly=True) as session:
            keys, after = [], None
            while True:
                rows, more = list_api_keys(session, limit=100, starting_after=after, include_revoked=all_keys)
                keys += [(k.id, k.scope, k.prefix, k.created_at, k.revoked_at) for k in rows]
                if not more:
                    break
                after = rows[-1].id
    finally:
        db.dispose()
    for key_id, scope, prefix, created, revoked in keys:
        state = f"revoked {format_instant(revoked)}" if revoked else "active"
        typer.echo(f"{key_id}  {scope:<8} {prefix}...  created {format_instant(created)}  {state}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (key_...), as `keys list` shows it"),
                database_url: DatabaseUrl = None):
    """Revoke an API key: every API process refuses it within a second."""
    from creditflow.auth.service import revoke_api_key
    from creditflow.kit.clock import SystemClock
    from creditflow.kit.db import Database

    db = Database(_database_url(database_url))
    try:
        with db.transaction() as session:
            key = revoke_api_key(session, key_id, now=SystemClock().now())
            prefix, scope = key.prefix, key.scope
    except CreditflowError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo(f"revoked {key_id} ({scope}, {prefix}...)")


DEMO_EXTERNAL_ID = "demo"


@app.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    database_url: str = typer.Option(None, "--database-url", help="Default: creditflow.db in this directory"),
    print_only: bool = typer.Option(False, "--print-only", help="Set up and print, but don't start the server"),
):
    """Start the server on SQLite with a demo customer subscribed to Standard monthly, and print
    where to look: the customer's billing page, the support console (a demo support user) and
    the metrics, with API keys for each. Running it again reuses the customer and replaces the
    demo's keys and password (they don't pile up)."""
    from sqlalchemy import delete, select

    from creditflow.api.server import serve as run_server
    from creditflow.api.settings import Settings
    from creditflow.auth.models import ApiKey
    from creditflow.auth.service import create_api_key
    from creditflow.customer.service import create_customer, list_customers
    from creditflow.kit.db import Database
    from creditflow.migrations.runner import upgrade
    from creditflow.portal.service import PAGE_PATH, create_portal_session
    from creditflow.purchase.payment_method import set_payment_method
    from creditflow.purchase.subscribe import subscribe
    from creditflow.subscription.service import customer_plan
    from creditflow.support.models import SupportUser
    from creditflow.support.passwords import hash_password
    from creditflow.support.service import create_support_user
    from creditflow.wiring import build_context

    if not print_only:  # before anything is created: a busy port is the commonest first stumble
        _refuse_busy_port(host, port)
    url = database_url or "sqlite:///creditflow.db"
    upgrade(url)
    # The link printed below must verify in the server that checks it.
    os.environ.setdefault("CREDITFLOW_SECRET_KEY", secrets.token_urlsafe(32))
    settings = Settings.from_env()
    ctx = build_context(Database(url))
    now = ctx.clock.now()
    password = secrets.token_urlsafe(12)
    with ctx.db.transaction() as session:
        # The demo's own keys are marked by their secret's prefix: last run's are replaced.
        session.execute(delete(ApiKey).where(ApiKey.prefix.like(f"{DEMO_KEY_PREFIX}%")))
        keys = {scope: create_api_key(session, scope, now=now,
                                      secret=f"{DEMO_KEY_PREFIX}{scope}_{secrets.token_urlsafe(24)}")[1]
                for scope in ("server", "metrics")}
        staff = session.scalar(select(SupportUser).where(SupportUser.username == DEMO_SUPPORT_USER))
        if staff is None:
            create_support_user(session, username=DEMO_SUPPORT_USER, password=password, role="support", now=now)
        else:
            staff.password_hash, staff.disabled_at = hash_password(password), None
        found, _ = list_customers(session, external_id=DEMO_EXTERNAL_ID, limit=1)
        customer = found[0] if found else create_customer(
            ctx, session, external_id=DEMO_EXTERNAL_ID, email="demo@example.com", name="Demo Customer")
        customer_id = customer.id
    with ctx.db.transaction(readonly=True) as session:
        plan = customer_plan(session, customer_id)
    if plan == "free":
        set_payment_method(ctx, customer_id, "pm_card_ok")
        subscribe(ctx, customer_id, "standard", "monthly")
    with ctx.db.transaction() as session:
        _, token = create_portal_session(session, customer_id=customer_id, return_url=None,
                                         secret_key=settings.secret_key, now=ctx.clock.now())
    base = f"http://{host}:{port}"
    server_key = keys["server"]
    typer.echo(f"demo customer:   {customer_id} (Standard monthly) in {url}")
    typer.echo(f"billing page:    {base}{PAGE_PATH}{token}   (one-time link, valid 5 minutes)")
    typer.echo(f"support console: {base}/console   user {DEMO_SUPPORT_USER}, password {password}")
    typer.echo(f"server API key:  {server_key}")
    typer.echo(f"try:             curl -H 'Authorization: Bearer {server_key}' {base}/v1/customers/{customer_id}/credits")
    typer.echo(f"metrics:         curl -H 'Authorization: Bearer {keys['metrics']}' {base}/metrics")
    typer.echo(f"API reference:   {base}/docs")
    if print_only:
        typer.echo(f"serve it with:   CREDITFLOW_SECRET_KEY={settings.secret_key} creditflow serve --port {port}")
        ctx.db.dispose()
        return
    _log_to_stderr()
    run_server(ctx, settings, host=host, port=port)


DEMO_KEY_PREFIX = "sk_demo_"
DEMO_SUPPORT_USER = "demo"


def _refuse_busy_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            typer.echo(f"error: can't listen on {host}:{port} ({exc.strerror or exc}); is another server running "
                       f"there? Choose another with --port.", err=True)
            raise typer.Exit(1) from None


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
