"""Building blocks for the migrations: columns by kind, tables whose constraints and indexes are
named the way the models name them, columns added to and dropped from a table, and an earlier
migration read as a module.

A migration describes the schema as it was when it ran, so these build plain SQLAlchemy types
(never the application's column types, which may change) and must keep building exactly what
they build today: add a new function rather than change one that a migration already calls.

Columns are NOT NULL unless `null=True`; `default` is a server-side default. Names follow the
models' naming convention: `pk_<table>`, `uq_<table>_<columns>`, `ck_<table>_<name>`,
`fk_<table>_<column>_<referenced table>`, `ix_<table>_<column>`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic import op


def ident(name: str, *, null: bool = False) -> sa.Column:
    """An id (`cus_…`, `sub_…`), or a reference to one."""
    return sa.Column(name, sa.String(length=40), nullable=null)


def string(name: str, length: int, *, null: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=null)


def bigint(name: str, *, null: bool = False, default: Any = None) -> sa.Column:
    """Money in minor units, credits in thousandths, or any other count that may grow large."""
    return sa.Column(name, sa.BigInteger(), nullable=null, server_default=default)


def integer(name: str, *, null: bool = False, **options: Any) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=null, **options)


def boolean(name: str, *, null: bool = False, default: Any = None) -> sa.Column:
    return sa.Column(name, sa.Boolean(), nullable=null, server_default=default)


def timestamp(name: str, *, null: bool = False) -> sa.Column:
    """A moment, with its time zone (the application writes UTC)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=null)


def json(name: str, *, null: bool = False) -> sa.Column:
    return sa.Column(name, sa.JSON(), nullable=null)


def binary(name: str, *, null: bool = False) -> sa.Column:
    return sa.Column(name, sa.LargeBinary(), nullable=null)


def create_table(
    table: str,
    *columns: sa.Column,
    primary_key: str | tuple[str, ...] = "id",
    checks: Mapping[str, str] | None = None,
    foreign_keys: Mapping[str, str] | None = None,
    unique: Iterable[str | tuple[str, ...]] = (),
    indexes: Iterable[str] = (),
    **options: Any,
) -> None:
    """`op.create_table` with its named constraints, then an index on each of `indexes`.

    `primary_key` is a column or a tuple of columns; `checks` maps a constraint's name to its condition; `foreign_keys` maps a column to the
    table whose `id` it references; each of `unique` is a column or a tuple of columns.
    Constraints are declared in the order autogenerate writes them (checks, foreign keys,
    primary key, unique), which is the order SQLite keeps in its copy of CREATE TABLE.
    """
    constraints: list[sa.Constraint] = [
        sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))
        for name, condition in (checks or {}).items()
    ]
    constraints += [
        sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))
        for column, target in (foreign_keys or {}).items()
    ]
    constraints.append(sa.PrimaryKeyConstraint(*_columns(primary_key), name=op.f(f"pk_{table}")))
    for names in map(_columns, unique):
        constraints.append(sa.UniqueConstraint(*names, name=op.f(f"uq_{table}_{'_'.join(names)}")))
    op.create_table(table, *columns, *constraints, **options)
    for column in indexes:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def _columns(names: str | tuple[str, ...]) -> tuple[str, ...]:
    return (names,) if isinstance(names, str) else names


def partial_index(name: str, table: str, columns: list[str], where: str, *,
                  unique: bool = False, sqlite_where: str | None = None) -> None:
    """An index over the rows that match `where` (`sqlite_where` where SQLite spells it
    differently, e.g. a boolean as 0 or 1)."""
    op.create_index(name, table, columns, unique=unique,
                    sqlite_where=sa.text(sqlite_where or where), postgresql_where=sa.text(where))


def add_columns(table: str, *columns: sa.Column) -> None:
    """Add columns (in batch mode: SQLite rebuilds the table where it must)."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.add_column(column)


def drop_columns(table: str, *names: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name in names:
            batch_op.drop_column(name)


def earlier_revision(filename: str) -> ModuleType:
    """The module of an earlier migration in versions/, for what a later one builds on (the SQL
    of a function it replaces, say) exactly as that migration wrote it."""
    path = Path(__file__).resolve().parent / "versions" / filename
    spec = importlib.util.spec_from_file_location(f"creditflow_migration_{path.stem[:4]}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
