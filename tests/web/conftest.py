"""Browser-test fixtures: per backend, one database and one server for the whole session (each
test makes its own customers, so tests don't see each other); one Chromium for the session;
a fresh browser context (no cookies) per test.

Every flow runs on SQLite; the flows marked `web_kit.both_backends` run on PostgreSQL too.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy.engine import make_url
from web_kit import CHROMIUM_ARGS, DESKTOP, SECRET_KEY, SERVER_KEY, ServerThread, WebEnv, utc

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.kit.clock import FixedClock
from creditflow.kit.db import Database
from creditflow.migrations.runner import upgrade

CHROMIUM = os.environ.get("CREDITFLOW_CHROMIUM", "/usr/bin/chromium")


def _serve(database: Database):
    """The real app (the API with the billing page and console) on `database`, in uvicorn."""
    from creditflow.payment.sandbox import SandboxGateway

    wall = FixedClock(utc(2026, 1, 31, 10))
    ctx = Context(db=database, catalog=load_catalog(), gateway=SandboxGateway(database), clock=wall)
    settings = replace(Settings(), secret_key=SECRET_KEY, test_clocks=True, bootstrap_keys=f"{SERVER_KEY}:server")
    app = create_app(ctx, settings)
    with ServerThread(app) as server, server.api_client() as http:
        yield WebEnv(ctx=ctx, base_url=server.url, http=http, wall=wall)


@pytest.fixture(scope="session")
def sqlite_web_env(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'web.db'}"
    upgrade(url)
    database = Database(url)
    try:
        yield from _serve(database)
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def pg_web_env(_pg_admin):
    """A database of its own on the test PostgreSQL server (skipped, or failed in CI, as the
    other PostgreSQL tests are when there is none)."""
    name = f"cf_test_web_{uuid.uuid4().hex[:10]}"
    with _pg_admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(str(_pg_admin.url)).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        database = Database(url)
        try:
            yield from _serve(database)
        finally:
            database.dispose()
    finally:
        with _pg_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def env(request) -> WebEnv:
    """SQLite, or the backend a `both_backends` test is parametrised with."""
    backend = getattr(request, "param", "sqlite")
    return request.getfixturevalue("pg_web_env" if backend == "postgres" else "sqlite_web_env")


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM} (scripts/install-browser.sh installs it)"
        if os.environ.get("CREDITFLOW_REQUIRE_BROWSER") == "1":  # CI: the browser tests must run
            pytest.fail(f"{reason} (CREDITFLOW_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, env):
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True, base_url=env.base_url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
