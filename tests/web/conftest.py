"""Browser-test fixtures: one database, one server and one Chromium for the whole session (each
test makes its own customers, so tests don't see each other), and a fresh browser context
(no cookies) per test."""

from __future__ import annotations

import os
from dataclasses import replace

import httpx
import pytest
from playwright.sync_api import sync_playwright
from web_kit import CHROMIUM_ARGS, DESKTOP, SECRET_KEY, SERVER_KEY, ServerThread, WebEnv, utc

from creditflow.api.app import create_app
from creditflow.api.settings import Settings
from creditflow.catalog.loader import load_catalog
from creditflow.context import Context
from creditflow.kit.clock import FixedClock
from creditflow.kit.db import Database
from creditflow.kit.db.migrate import upgrade
from creditflow.payment.sandbox import SandboxGateway

CHROMIUM = os.environ.get("CREDITFLOW_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def web_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'web.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def web_env(web_db):
    wall = FixedClock(utc(2026, 1, 31, 10))
    ctx = Context(db=web_db, catalog=load_catalog(), gateway=SandboxGateway(web_db), clock=wall)
    settings = replace(Settings(), secret_key=SECRET_KEY, test_clocks=True, bootstrap_keys=f"{SERVER_KEY}:server")
    app = create_app(ctx, settings)
    with ServerThread(app) as server, httpx.Client(base_url=server.url,
                                                  headers={"Authorization": f"Bearer {SERVER_KEY}"}) as http:
        yield WebEnv(ctx=ctx, base_url=server.url, http=http, wall=wall)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/install-browser.sh installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, web_env):
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True, base_url=web_env.base_url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def env(web_env) -> WebEnv:
    return web_env
