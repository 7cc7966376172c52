"""Alembic environment, configured in code by `creditflow.migrations.runner.make_config`.

There is no alembic.ini: `creditflow migrate` (or `python -m creditflow.migrations.runner`)
builds the configuration and usually hands over an open connection in
`config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.schema import DefaultClause
from sqlalchemy.sql.elements import False_, True_
from sqlalchemy.types import TypeDecorator

from creditflow.kit.db.partitions import include_object
from creditflow.migrations.runner import migration_connection
from creditflow.models import Base

config = context.config
target_metadata = Base.metadata


def render_item(type_, obj, autogen_context):
    """Render what autogenerate would otherwise render wrongly.

    - Our column types as their plain SQLAlchemy implementation: migrations must keep working
      when `creditflow.kit.db` changes, so they never import it. UTCDateTime becomes
      `sa.DateTime(timezone=True)`, CreditsColumn `sa.BigInteger()`.
    - Boolean server defaults (`server_default=false()`) as `sa.false()`/`sa.true()`:
      autogenerate compiles expressions for the database it compares against (SQLite: `0`),
      and `DEFAULT 0` on a PostgreSQL boolean column is an error.
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl
        if type(impl).__module__.startswith("sqlalchemy.sql"):
            return f"sa.{impl!r}"
    if type_ == "server_default" and isinstance(obj, DefaultClause):
        if isinstance(obj.arg, False_):
            return "sa.false()"
        if isinstance(obj.arg, True_):
            return "sa.true()"
    return False


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can't ALTER most things; batch mode copies the table
        render_item=render_item,
        compare_type=True,
        compare_server_default=True,
        **kwargs,
    )


def _run(connection) -> None:
    # The monthly partitions of PostgreSQL's history tables aren't in the models, and some
    # constraints exist on one backend only (kit/db/partitions.py).
    _configure(connection=connection, include_object=include_object(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            # Foreign keys are off while migrating (batch mode rebuilds tables); check that
            # the result is still consistent before committing.
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left rows violating foreign keys: {broken[:10]}")


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with migration_connection(config.get_main_option("sqlalchemy.url")) as connection:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
