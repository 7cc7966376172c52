"""Shared fixtures: real databases on SQLite and PostgreSQL.

    database_url   a fresh, EMPTY database; parametrised [sqlite] / [postgres]
    db             `Database` on a fresh database migrated to head; same params, and the
                   same database as `database_url` (db.url == database_url)
    sqlite_db      `Database`, migrated, SQLite only
    pg_db          `Database`, migrated, PostgreSQL only (marked `postgres` automatically)
    make_sqlite_db a factory: each call returns another fresh migrated SQLite `Database`
                   (e.g. one per Hypothesis example)

A test (or fixture) that needs a schema asks for `db`; it runs twice, once per backend. Use
`db.url` to point an app, a worker or a subprocess at the same database.

Speed: the Alembic migrations run once per session and backend into a template (a SQLite
file, a PostgreSQL database); each test then gets its own copy (a file copy, ~1 ms, or
`CREATE DATABASE ... TEMPLATE`, ~30-200 ms depending on the server's load). Every test therefore runs on a
schema made by the migrations, isolated from every other test, with no cleanup to forget.

PostgreSQL is at CREDITFLOW_TEST_POSTGRES_URL (default postgres@127.0.0.1:5432). When it is
unreachable, postgres tests are skipped, unless CREDITFLOW_REQUIRE_POSTGRES=1 (CI), in which
case they error with the reason. `-m "not postgres"` deselects them.
"""

from __future__ import annotations

import gc
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from creditflow.kit.db import Database, grouped
from creditflow.kit.db.base import Base
from creditflow.migrations.runner import upgrade

PG_ADMIN_URL = os.environ.get(
    "CREDITFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_FIXTURES = {"pg_db"}


def pytest_collection_modifyitems(items):
    for item in items:
        if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def pytest_collection_finish(session):
    """What is alive once every test module is imported (modules, classes, the catalog) lives
    as long as the process: out of the garbage collector's sight, its full collections walk
    only what the tests make. (`gc.freeze`; see `_apps_and_engines_die_with_their_test`.)"""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _apps_and_engines_die_with_their_test() -> Iterator[None]:
    """Let each test's apps and engines, and what they hold, be freed after it.

    Two caches outlive them. FastAPI remembers up to 4096 endpoint and dependency functions in
    caches of its module `fastapi.dependencies.models`, keyed by the function; our endpoints
    close over the app's context, its database and engine. SQLAlchemy's mappers each remember
    100 compiled INSERTs and UPDATEs, keyed by the engine's dialect. A test process would keep
    a few hundred apps and engines alive: over a million objects, which every full garbage
    collection walks, pausing the servers tests run in threads for seconds, long enough for a
    request to time out. No entry of a finished test's app or engine is ever used again, so
    emptying the caches costs nothing. (A service has one app and one engine: the caches stay
    small there.)"""
    yield
    from fastapi.dependencies import models

    for value in vars(models).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()
    for mapper in Base.registry.mappers:
        compiled = mapper.__dict__.get("_compiled_cache")
        if compiled is not None:
            compiled.clear()


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the maintenance database, or skip/fail if there is none."""
    engine = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool,
        connect_args={"connect_timeout": 3},
    )
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        engine.dispose()
        reason = f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL)!r}: {exc.__class__.__name__}: {exc}"
        if os.environ.get("CREDITFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (CREDITFLOW_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(reason)
    yield engine
    engine.dispose()


def _pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _pg_name(url: str) -> str:
    return make_url(url).database


def _pg_create(admin: Engine, name: str, template: str | None = None) -> None:
    sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    with admin.connect() as conn:
        conn.exec_driver_sql(sql)


def _pg_drop(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_template(_pg_admin) -> Iterator[str]:
    """A database migrated to head once per session; tests get copies of it."""
    name = f"cf_test_template_{uuid.uuid4().hex[:10]}"
    _pg_create(_pg_admin, name)
    try:
        upgrade(_pg_url(name))  # disposes its engine: a template must have no connections
        yield name
    finally:
        _pg_drop(_pg_admin, name)


@contextmanager
def _pg_fresh(admin: Engine, template: str | None = None) -> Iterator[str]:
    """A new database with a random name (empty, or a copy of `template`), dropped afterwards
    even if something still holds a connection to it."""
    name = f"cf_test_{uuid.uuid4().hex[:12]}"
    _pg_create(admin, name, template=template)
    try:
        yield _pg_url(name)
    finally:
        _pg_drop(admin, name)


# --- SQLite ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite_template") / "template.db"
    upgrade(f"sqlite:///{path}")
    # All connections are closed, so SQLite has checkpointed and removed the WAL: the main
    # file alone is the whole database (and keeps journal_mode=WAL in its header).
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


def _sqlite_path(url: str) -> Path:
    return Path(make_url(url).database)


def _sqlite_copy(template: Path, url: str) -> str:
    path = _sqlite_path(url)
    for stale in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(template, path)
    return url


# --- Public fixtures -------------------------------------------------------------------------

# URLs whose database was created as a copy of the migrated template.
_MIGRATED: set[str] = set()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh database on each backend: empty, unless the test also uses `db`, in which case
    it is that (migrated) database, created once, straight from the template."""
    migrated = "db" in request.fixturenames
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        if migrated:
            _MIGRATED.add(_sqlite_copy(request.getfixturevalue("_sqlite_template"), url))
        yield url
        _MIGRATED.discard(url)
        return
    template = request.getfixturevalue("_pg_template") if migrated else None
    with _pg_fresh(request.getfixturevalue("_pg_admin"), template) as url:
        if migrated:
            _MIGRATED.add(url)
        yield url
        _MIGRATED.discard(url)


def _migrated_copy(request, url: str) -> str:
    """Turn the unused database at `url` into a copy of the migrated template."""
    if url.startswith("sqlite"):
        return _sqlite_copy(request.getfixturevalue("_sqlite_template"), url)
    admin = request.getfixturevalue("_pg_admin")
    name = _pg_name(url)
    _pg_drop(admin, name)
    _pg_create(admin, name, template=request.getfixturevalue("_pg_template"))
    return url


def _open(url: str) -> Iterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def db(request, database_url) -> Iterator[Database]:
    """A `Database` whose schema was made by the Alembic migrations; one per backend."""
    if database_url not in _MIGRATED:  # `db` was requested late (getfixturevalue)
        _migrated_copy(request, database_url)
    yield from _open(database_url)


@pytest.fixture
def sqlite_db(request, tmp_path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'sqlite_db.db'}"
    yield from _open(_sqlite_copy(request.getfixturevalue("_sqlite_template"), url))


@pytest.fixture
def pg_db(request, _pg_admin) -> Iterator[Database]:
    with _pg_fresh(_pg_admin, request.getfixturevalue("_pg_template")) as url:
        yield from _open(url)


@pytest.fixture
def make_sqlite_db(request, tmp_path):
    """A factory of fresh migrated SQLite databases (a file copy each, ~ms): for Hypothesis
    tests that need a clean database per example, which a function-scoped fixture is not."""
    opened: list[Database] = []

    def make() -> Database:
        url = f"sqlite:///{tmp_path / f'fresh_{len(opened)}.db'}"
        opened.append(Database(_sqlite_copy(request.getfixturevalue("_sqlite_template"), url)))
        return opened[-1]

    yield make
    for database in opened:
        database.dispose()


@pytest.fixture
def grouped_commits(monkeypatch) -> list[int]:
    """The number of units in each commit of the SQLite grouped writer (kit/db/grouped.py), each
    commit slowed by 5 ms, as by a slow disk, so that concurrent units arrive meanwhile."""
    commits: list[int] = []
    real_write = grouped.Writer._write

    def counting_write(writer, db, units):
        commits.append(len(units))
        time.sleep(0.005)
        return real_write(writer, db, units)

    monkeypatch.setattr(grouped.Writer, "_write", counting_write)
    return commits
