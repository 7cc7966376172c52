"""Declarative base and the column types that keep money, credits and time honest."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Index, MetaData, text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from creditflow.kit.credits import Credits

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def partial_index(name: str, *columns: str, where: str, sqlite_where: str | None = None, unique: bool = False) -> Index:
    """An index of the rows `where` holds, on both backends (`sqlite_where` where SQLite must
    say it otherwise: booleans are 0 and 1 there)."""
    return Index(name, *columns, unique=unique, sqlite_where=text(sqlite_where or where),
                 postgresql_where=text(where))


class UTCDateTime(TypeDecorator):
    """A timestamp column that refuses naive datetimes and always reads back aware UTC.

    SQLite has no time zone type, so values are stored as naive UTC there and re-tagged on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} refused: use timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class CreditsColumn(TypeDecorator):
    """Credits stored as an integer count of thousandths."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Credits | None, dialect):
        if value is None:
            return None
        if isinstance(value, Credits):
            return value.milli
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(f"expected Credits, got {value!r}")

    def process_result_value(self, value, dialect):
        return None if value is None else Credits(int(value))
