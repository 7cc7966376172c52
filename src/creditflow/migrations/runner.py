"""Alembic driven from code, so migrations run from an installed package without alembic.ini.

    upgrade(url)              bring a database to the newest schema (what `creditflow migrate` does)
    current(url)              the revision a database is at, None if never migrated
    make_config(url)          an alembic Config for anything else (`alembic.command.*`)

Adding a migration after changing the models (run from the repository root):

    .venv/bin/python -m creditflow.migrations.runner autogenerate "add refunds table"

autogenerates the difference between `creditflow.models.Base.metadata` and a fresh temporary
SQLite database upgraded to head, and writes `migrations/versions/NNNN_<slug>.py`. Read the
file before committing it: autogenerate misses renames (it sees a drop and an add) and
server-side defaults need a hand-written backfill. `tests/integration/test_migrations.py`
fails on both backends while the models and the migrations disagree.

Until the first release, `regen-initial` rewrites 0001_initial.py from the models instead of
stacking revisions (it refuses once a second revision exists):

    .venv/bin/python -m creditflow.migrations.runner regen-initial

Autogenerate knows nothing of triggers, functions or data. Write those between markers

    # ### hand-written: <what> ###
    ...
    # ### end hand-written ###

and regen-initial carries them over: indented blocks in upgrade() go after the generated
commands, those in downgrade() before them, unindented ones (helpers) at the end of the file.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
INITIAL_REVISION = "0001"


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


def regen_initial() -> Path:
    """Rewrite 0001_initial.py from the current models (only while it is the sole revision),
    carrying over its hand-written blocks (see the module docstring).

    The file is written beside and moved into place in one step, so versions/ never lacks
    it (others may be running tests or committing)."""
    target = VERSIONS_DIR / f"{INITIAL_REVISION}_initial.py"
    source = render_initial()
    staging = target.with_suffix(".py.tmp")
    staging.write_text(source)
    os.replace(staging, target)
    return target


def render_initial() -> str:
    """What regen-initial would write, generated in a scratch copy of the migrations."""
    others = [p for p in VERSIONS_DIR.glob("*.py") if not p.name.startswith(f"{INITIAL_REVISION}_")]
    if others:
        raise SystemExit(f"refusing: other revisions exist ({', '.join(p.name for p in others)})")
    target = VERSIONS_DIR / f"{INITIAL_REVISION}_initial.py"
    blocks = hand_written_blocks(target.read_text()) if target.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "migrations"
        shutil.copytree(MIGRATIONS_DIR, scratch, ignore=shutil.ignore_patterns("__pycache__", "versions"))
        (scratch / "versions").mkdir()
        generated = revision(f"sqlite:///{tmp}/initial.db", "initial", rev_id=INITIAL_REVISION,
                             script_location=scratch)
        source = insert_hand_written(generated.read_text(), blocks)
    compile(source, str(target), "exec")
    return source


_HAND_START = re.compile(r"^( *)# ### hand-written: .* ###$")
_HAND_END = "# ### end hand-written ###"
_AUTO_END = "    # ### end Alembic commands ###\n"


def hand_written_blocks(source: str) -> dict[str, list[str]]:
    """The hand-written blocks of a migration, by where they sit: "upgrade", "downgrade" or
    "module" (unindented, e.g. helper functions)."""
    blocks: dict[str, list[str]] = {"upgrade": [], "downgrade": [], "module": []}
    function, block, where = "module", None, "module"
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        if block is None:
            if line.startswith("def "):
                function = "upgrade" if line.startswith("def upgrade(") else (
                    "downgrade" if line.startswith("def downgrade(") else "module")
            start = _HAND_START.match(line.rstrip("\n"))
            if start:
                block, where = [line], (function if start.group(1) else "module")
        else:
            block.append(line)
            if line.strip() == _HAND_END:
                blocks[where].append("".join(block))
                block = None
        if block is not None and number == len(source.splitlines()):
            raise SystemExit(f"hand-written block without {_HAND_END!r}")
    return blocks


def insert_hand_written(source: str, blocks: dict[str, list[str]]) -> str:
    """Upgrade blocks go after the generated commands (the tables exist), downgrade blocks
    before them (the tables still exist), module blocks at the end."""
    if blocks.get("upgrade"):
        head, _, tail = source.partition(_AUTO_END)
        source = head + _AUTO_END + "".join("\n" + b for b in blocks["upgrade"]) + tail
    if blocks.get("downgrade"):
        marker = "def downgrade() -> None:\n"
        head, _, tail = source.partition(marker)
        source = head + marker + "".join(b + "\n" for b in blocks["downgrade"]) + tail
    if blocks.get("module"):
        source = source.rstrip("\n") + "\n" + "".join("\n\n" + b for b in blocks["module"])
    return source


def _next_rev_id(config: Config) -> str:
    numbers = [int(s.revision) for s in ScriptDirectory.from_config(config).walk_revisions()
               if s.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def main(argv: list[str] | None = None) -> int:
    from creditflow.kit.db.session import default_database_url

    parser = argparse.ArgumentParser(prog="python -m creditflow.migrations.runner")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("autogenerate", help="new revision from the models").add_argument("message")
    sub.add_parser("regen-initial", help="rewrite 0001_initial.py from the models")
    for name in ("upgrade", "current"):
        sub.add_parser(name).add_argument("url", nargs="?", default=None)
    args = parser.parse_args(argv)

    if args.cmd == "autogenerate":
        print(autogenerate(args.message))
    elif args.cmd == "regen-initial":
        print(regen_initial())
    elif args.cmd == "upgrade":
        upgrade(args.url or default_database_url())
    elif args.cmd == "current":
        print(current(args.url or default_database_url()) or "(none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
