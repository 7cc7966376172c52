"""SQLAlchemy Core statements compiled once per dialect and run on the DBAPI cursor.

For the hot paths (a credit spend, an idempotency claim), SQLAlchemy's per-execution work
(statement construction, the execution context, parameter and result set-up) costs several times
the database's own work on a one-row statement. A `CompiledStatement` is compiled once per
dialect and run on the DBAPI cursor of the unit of work (`UnitCursor`), with the column types'
own bind and result processors applied by hand: the SQL is what SQLAlchemy compiles from the
table definitions, UTCDateTime still refuses naive datetimes, a column type still reads back its
Python value, and a column's scalar Python default still fills an insert that doesn't name it.
"""

from __future__ import annotations

from collections import namedtuple

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


class UnitCursor:
    """A DBAPI cursor inside a unit of work, with the dialect that compiles for it."""

    def __init__(self, dialect, raw):
        self.dialect = dialect
        self.raw = raw

    @classmethod
    def of(cls, db: Session | Connection) -> "UnitCursor":
        """The cursor of an ORM session's or a Core connection's transaction."""
        connection = db.connection() if isinstance(db, Session) else db
        return cls(connection.dialect, connection.connection.cursor())


class CompiledStatement:
    """A statement compiled once per dialect and run on a `UnitCursor`."""

    def __init__(self, statement):
        self.statement = statement
        self._prepared: dict[str, _DialectSQL] = {}

    def _prepare(self, dialect) -> "_DialectSQL":
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            prepared = self._prepared[dialect.name] = _DialectSQL(self.statement, dialect)
        return prepared

    def sql(self, dialect) -> str:
        """The statement as compiled for `dialect`, for a caller that binds its own values."""
        return self._prepare(dialect).sql

    def bind_names(self, dialect) -> tuple[str, ...]:
        """The names of the parameters in the order the driver takes them."""
        return tuple(name for name, *_ in self._prepare(dialect).binds)

    def execute(self, cursor: UnitCursor, params: dict) -> None:
        prepared = self._prepare(cursor.dialect)
        cursor.raw.execute(prepared.sql, prepared.params(params))

    def executemany(self, cursor: UnitCursor, rows: list[dict]) -> None:
        prepared = self._prepare(cursor.dialect)
        if len(rows) == 1:  # the usual case; psycopg's executemany would open a pipeline
            cursor.raw.execute(prepared.sql, prepared.params(rows[0]))
        elif rows:
            cursor.raw.executemany(prepared.sql, [prepared.params(row) for row in rows])

    def rows(self, cursor: UnitCursor, params: dict) -> list:
        prepared = self._prepare(cursor.dialect)
        cursor.raw.execute(prepared.sql, prepared.params(params))
        return [prepared.row(raw) for raw in cursor.raw.fetchall()]

    def first(self, cursor: UnitCursor, params: dict):
        rows = self.rows(cursor, params)
        return rows[0] if rows else None


class _DialectSQL:
    def __init__(self, statement, dialect):
        column_keys = None
        if statement.is_insert:  # every column but an autoincrement key is a parameter
            column_keys = [c.key for c in statement.table.columns if not (c.primary_key and c.autoincrement is True)]
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = compiled.string
        literals = compiled.construct_params(_check=False)  # the statement's own values
        if statement.is_insert:
            for column in statement.table.columns:  # scalar Python defaults, as SQLAlchemy would
                if column.key in literals and column.default is not None and column.default.is_scalar:
                    literals[column.key] = column.default.arg
        order = list(compiled.positiontup) if dialect.positional else list(literals)
        # (name, the statement's own value, processor, required) in the driver's order; a
        # required parameter missing from the call raises KeyError.
        self.binds = []
        for name in order:
            bind = compiled.binds[name]
            required = bind.required and literals[name] is None
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self.binds.append((name, literals[name], process, required))
        self.keys = None if dialect.positional else order  # psycopg takes a mapping
        if statement.is_select:
            columns = list(statement.selected_columns)
            self.row_type = _row_type(tuple(c.key for c in columns))
            results = [(i, c.type.dialect_impl(dialect).result_processor(dialect, None))
                       for i, c in enumerate(columns)]
            self.results = [(i, process) for i, process in results if process is not None]

    def params(self, params: dict):
        values = []
        for name, literal, process, required in self.binds:
            value = params[name] if required else params.get(name, literal)
            values.append(value if process is None else process(value))
        return values if self.keys is None else dict(zip(self.keys, values))

    def row(self, raw):
        values = list(raw)
        for i, process in self.results:
            if values[i] is not None:
                values[i] = process(values[i])
        return self.row_type._make(values)


_row_types: dict[tuple, type] = {}


def _row_type(keys: tuple) -> type:
    if keys not in _row_types:
        _row_types[keys] = namedtuple("Row", keys)
    return _row_types[keys]
