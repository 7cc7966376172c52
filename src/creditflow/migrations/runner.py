"""Alembic driven from code, so migrations run from an installed package without alembic.ini.

    upgrade(url)              bring a database to the newest schema (what `creditflow migrate` does)
    current(url)              the revision a database is at, None if never migrated
    make_config(url)          an alembic Config for anything else (`alembic.command.*`)

Adding a migration after changing the models (run from the repository root):

    .venv/bin/python -m creditflow.migrations.runner autogenerate "add refunds table"

autogenerates the difference between `creditflow.models.Base.metadata` and a fresh temporary
SQLite database upgraded to head, and writes `migrations/versions/NNNN_<slug>.py`. Read the
file before committing it: autogenerate misses renames (it sees a drop and an add) and
server-side defaults need a hand-written backfill; it knows nothing of triggers, functions or
data. Rewrite its tables and columns with `creditflow.migrations.schema`, as the other
migrations are written. `tests/integration/test_migrations.py` fails on both backends while the
models and the migrations disagree.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent


def make_config(url: str, connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the package's migrations; no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates '%', which appears in URL-encoded passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def migration_connection(url: str) -> Iterator[Connection]:
    """A connection from `Database(url)`, so SQLite gets our pragmas (WAL, synchronous=FULL,
    BEGIN IMMEDIATE). On SQLite foreign keys are switched off for the duration, because batch
    mode rebuilds tables and the pragma is ignored inside a transaction; env.py runs
    `PRAGMA foreign_key_check` before committing instead."""
    from creditflow.kit.db.session import Database

    database = Database(url)
    try:
        with database.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Outside any transaction: the raw driver connection is in autocommit mode.
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
            try:
                yield connection
            finally:
                if sqlite:
                    connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
    finally:
        database.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    with migration_connection(url) as connection:
        command.upgrade(make_config(url, connection), revision)


def downgrade(url: str, revision: str) -> None:
    with migration_connection(url) as connection:
        command.downgrade(make_config(url, connection), revision)


def current(url: str) -> str | None:
    from creditflow.kit.db.session import Database

    database = Database(url)
    try:
        engine = database.engine.execution_options(creditflow_readonly=True)
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        database.dispose()


def head() -> str | None:
    return ScriptDirectory.from_config(make_config("sqlite://")).get_current_head()


def revision(url: str, message: str, *, rev_id: str | None = None,
             script_location: Path | None = None) -> Path:
    """Autogenerate a revision from the difference between the models and the database at
    `url` (which must be at head). Returns the path of the new file."""
    config = make_config(url)
    if script_location is not None:
        config.set_main_option("script_location", str(script_location))
    rev_id = rev_id or _next_rev_id(config)
    with migration_connection(url) as connection:
        config.attributes["connection"] = connection
        script = command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
    return Path(script.path)  # type: ignore[union-attr]


def autogenerate(message: str) -> Path:
    """`revision()` against a throw-away SQLite database upgraded to head."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/autogenerate.db"
        upgrade(url)
        return revision(url, message)


def _next_rev_id(config: Config) -> str:
    numbers = [int(s.revision) for s in ScriptDirectory.from_config(config).walk_revisions()
               if s.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def main(argv: list[str] | None = None) -> int:
    from creditflow.kit.db.session import default_database_url

    parser = argparse.ArgumentParser(prog="python -m creditflow.migrations.runner")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("autogenerate", help="new revision from the models").add_argument("message")
    for name in ("upgrade", "current"):
        sub.add_parser(name).add_argument("url", nargs="?", default=None)
    args = parser.parse_args(argv)

    if args.cmd == "autogenerate":
        print(autogenerate(args.message))
    elif args.cmd == "upgrade":
        upgrade(args.url or default_database_url())
    elif args.cmd == "current":
        print(current(args.url or default_database_url()) or "(none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
