"""Monthly partitions of the history tables on PostgreSQL.

On PostgreSQL, `credit_entries`, `events` and `webhook_deliveries` are partitioned by RANGE on
`created_at`, one partition per calendar month (UTC), named `<table>_pYYYYMM`, plus a DEFAULT
partition `<table>_default` for rows of a month that has no partition yet (a test clock's
far-future time, say). Migration 0015 made them; `ensure_months` keeps the current month and
the next `AHEAD` ready (the worker's `partitions` job and `creditflow migrate` call it), and
`creditflow archive` exports and drops old ones. SQLite keeps plain tables.

What PostgreSQL asks of a partitioned table, and what the models declare for it:
- A primary key or unique constraint must include the partition key. The primary keys are
  (seq, created_at) for ledger entries and events, (id, created_at) for deliveries; the
  models keep `seq` / `id` as the mapper's identity (it is unique: one sequence numbers the
  rows). `id` (the public one) is unique with `created_at`; see `only_on` for how the models
  say what exists on one backend only.
- A month can't be created while the DEFAULT partition holds rows of that month: `ensure_months`
  moves them into the new partition in the same transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date, datetime, timezone

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("creditflow.partitions")

PARTITIONED = ("credit_entries", "events", "webhook_deliveries")
AHEAD = 2  # months made ready beyond the current one
# Serialises everyone who creates or drops partitions (workers, migrate, archive): one key.
LOCK_KEY = 0x63665F7061727473  # "cf_parts"
_PARTITION = re.compile(r"^(credit_entries|events|webhook_deliveries)_(p\d{6}|default)$")


def is_partition(name: str) -> bool:
    """A table that is one partition of a history table (not in the models: the migrations and
    the worker make them)."""
    return bool(_PARTITION.match(name))


# --- Models that differ by backend ---------------------------------------------------------------


def only_on(dialect: str, item):
    """Declare a constraint or index that exists on one backend only: `create_all` builds it
    there only (`ddl_if`), and the comparison of the models with a migrated database
    (`include_object`) looks for it there only."""
    item.info["only_on"] = dialect
    return item.ddl_if(dialect=dialect)


def include_object(dialect: str):
    """An Alembic `include_object` for a database of `dialect`: leaves out the partitions (they
    aren't in the models) and the models' objects meant for the other backend."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table" and reflected and name and is_partition(name):
            return False
        only = getattr(obj, "info", {}).get("only_on") if not reflected else None
        return only is None or only == dialect

    return include


# --- Months --------------------------------------------------------------------------------------


def month_of(at: datetime | date) -> date:
    if isinstance(at, datetime):
        at = at.astimezone(timezone.utc) if at.tzinfo else at
    return date(at.year, at.month, 1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y%m}"


def bounds(month: date) -> tuple[str, str]:
    """The partition's range as PostgreSQL literals: [first instant, first instant of the next)."""
    return f"{month:%Y-%m-%d} 00:00:00+00", f"{add_months(month, 1):%Y-%m-%d} 00:00:00+00"


def is_partitioned(conn: Connection, table: str) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return conn.execute(text(
        "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}).scalar() is True


def months(conn: Connection, table: str) -> list[date]:
    """The months that have a partition, oldest first."""
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:t)"), {"t": table}).scalars()
    found = [date(int(n[-6:-2]), int(n[-2:]), 1) for n in names if re.fullmatch(rf"{table}_p\d{{6}}", n)]
    return sorted(found)


def lock(conn: Connection) -> None:
    """Wait for anyone else creating or dropping partitions (until this transaction ends)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})


def ensure_months(conn: Connection, wanted: Iterable[date], tables: Iterable[str] = PARTITIONED) -> list[str]:
    """Create the partitions of `wanted` months that don't exist yet; returns their names.

    Call inside a transaction: it takes the partitions lock first, so concurrent callers create
    each month once. Rows of a new month already in the DEFAULT partition move into it in the
    same transaction (PostgreSQL refuses to create the month otherwise): the DEFAULT partition
    is detached, the month and a new DEFAULT created, and the old DEFAULT's rows inserted
    through the parent (each lands where it belongs) before it is dropped. Ledger entries are
    never updated or deleted on the way: they are copied, then their old table dropped."""
    created: list[str] = []
    wanted = sorted(set(wanted))
    if conn.dialect.name != "postgresql" or not wanted:
        return created
    lock(conn)
    for table in tables:
        if not is_partitioned(conn, table):
            continue
        have = set(months(conn, table))
        missing = [m for m in wanted if m not in have]
        if not missing:
            continue
        default = f"{table}_default"
        in_default = conn.execute(text(
            f"SELECT 1 FROM {default} WHERE " + " OR ".join(
                f"(created_at >= '{bounds(m)[0]}' AND created_at < '{bounds(m)[1]}')" for m in missing)
            + " LIMIT 1")).first() is not None
        if in_default:
            conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {default}"))
            conn.execute(text(f"ALTER TABLE {default} RENAME TO {table}_default_moving"))
        for month in missing:
            lower, upper = bounds(month)
            name = partition_name(table, month)
            conn.execute(text(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ('{lower}') TO ('{upper}')"))
            created.append(name)
        if in_default:
            conn.execute(text(f"CREATE TABLE {default} PARTITION OF {table} DEFAULT"))
            conn.execute(text(f"INSERT INTO {table} SELECT * FROM {table}_default_moving"))
            conn.execute(text(f"DROP TABLE {table}_default_moving"))
    return created


def ensure_ahead(conn: Connection, now: datetime, ahead: int = AHEAD) -> list[str]:
    """The current month (UTC) and the next `ahead`."""
    first = month_of(now)
    return ensure_months(conn, [add_months(first, n) for n in range(ahead + 1)])


# --- The worker's job ------------------------------------------------------------------------------

RECHECK_SECONDS = 3600.0
_checked: dict[str, tuple[date, float]] = {}  # database url -> (month made ready, when), per process


def run(ctx, now: datetime, test_clock_id: str | None) -> int:
    """The worker's `partitions` job: the current month (UTC, real time) and the next `AHEAD`
    have their partitions. Cheap on most ticks: it looks at the catalog once an hour per
    process, or when the month changes; concurrent workers create each month once (lock).
    A lock it can't get within 5 s (a long transaction on the table) is left for a later tick."""
    import time

    if test_clock_id is not None or not ctx.db.is_postgres:
        return 0
    month, key = month_of(now), ctx.db.url
    seen = _checked.get(key)
    if seen is not None and seen[0] == month and time.monotonic() - seen[1] < RECHECK_SECONDS:
        return 0

    def work(session) -> int:
        conn = session.connection()
        conn.execute(text("SET LOCAL lock_timeout = '5s'"))
        return ensure_ahead(conn, now)

    try:
        created = ctx.db.run(work)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available: next tick
            raise
        log.warning("partitions: a lock on a history table was not free within 5 s; trying again later")
        return 0
    _checked[key] = (month, time.monotonic())
    if created:
        log.info("partitions created: %s", ", ".join(created))
    return len(created)
