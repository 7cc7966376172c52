"""Old months of events, webhook deliveries and ledger entries: exported, then removed.

Each month of each table becomes one file, `<out>/<table>-<YYYY-MM>.jsonl.gz`: one JSON object
per row, in the order of the rows' numbers, with `<table>-<YYYY-MM>.manifest.json` beside it
giving the row count and the SHA-256 of the uncompressed lines, which a user can verify:

    gunzip -c events-2026-03.jsonl.gz | wc -l
    gunzip -c events-2026-03.jsonl.gz | sha256sum

A month is left alone (and said why) while it holds an event not yet sent to the webhook
endpoints or not yet notified, an event with a delivery still pending, or a pending delivery.
Ledger entries go only when the ledger check's checkpoint covers every entry of the month
(`creditflow ledger check` first); their sums per customer and per lot are kept
(`ledger_archived_accounts`, `ledger_archived_lots`), so balances stay what they were and the
full ledger check still proves every account from its archived sums plus its entries.

PostgreSQL: the month's partition is locked against writes, exported, the file written and
fsynced, then the partition detached and dropped and the month recorded as done, all in one
transaction: a crash before the commit leaves the month as it was (a re-run exports it again,
over the same file); after, the month is done and a re-run skips it.
SQLite: the month is exported (rows numbered up to the last one seen) and recorded as
`exported`, then its rows are deleted in batches, each batch with its ledger sums in one
transaction; a re-run finishes an `exported` month from its record without exporting it again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import Boolean, DateTime, text
from sqlalchemy.engine import Connection
from sqlalchemy.types import JSON

from creditflow.credits.check import ENTRY_SUMS, LOT_SUMS, TOTALS
from creditflow.kit.db import Base, Database
from creditflow.kit.db import partitions

# table -> the column that numbers its rows
TABLES = {"events": "seq", "webhook_deliveries": "id", "credit_entries": "seq"}
BATCH = 5000


class ArchiveRefused(Exception):
    """Nothing was archived: the message says why and what to do."""


@dataclass
class Month:
    table: str
    month: date
    rows: int
    action: str  # archive | finish (an export recorded, its rows still to remove) | skip | done
    reason: str = ""
    file: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.month:%Y-%m}"


def months_before(db: Database, before: date, tables: tuple[str, ...]) -> list[Month]:
    """What an archive run would do with each month before `before`, table by table."""
    found: list[Month] = []
    with db.engine.connect() as conn:
        recorded = {(table, month): (status, file) for table, month, status, file in conn.execute(text(
            "SELECT table_name, month, status, file FROM archived_months"))}
        through = conn.execute(text("SELECT through_seq FROM ledger_checkpoints WHERE id = 1")).scalar()
        for table in tables:
            for month in _months(conn, table, before):
                status, file = recorded.get((table, f"{month:%Y-%m}"), (None, None))
                rows = conn.execute(text(f"SELECT count(*) FROM {_source(conn, table, month)}")).scalar_one()
                item = Month(table, month, rows, "archive")
                if status == "done":
                    item.action, item.reason, item.file = "done", f"already archived to {file}", Path(file)
                elif status == "exported":
                    item.action, item.file = "finish", Path(file)
                else:
                    reason = _blocked(conn, table, month, through)
                    if reason:
                        item.action, item.reason = "skip", reason
                if item.action != "done" or rows:
                    found.append(item)
    return found


def archive(db: Database, out: Path, before: date, *, tables: tuple[str, ...] = tuple(TABLES),
            dry_run: bool = False, echo: Callable[[str], None] = print, now: datetime | None = None) -> list[Month]:
    """Archive every month before `before` of `tables` that may go; returns what was looked at.
    Refuses (ArchiveRefused, nothing done) when a ledger month isn't covered by the checkpoint."""
    plan = months_before(db, before, tables)
    behind = [m for m in plan if m.table == "credit_entries" and m.action == "skip" and "checkpoint" in m.reason]
    if behind:
        raise ArchiveRefused(
            "ledger entries of " + ", ".join(m.label for m in behind) + " are not all covered by the ledger "
            "check's checkpoint: run `creditflow ledger check` first (it must pass), then archive again "
            "(or leave the ledger out with --skip-ledger)")
    for item in plan:
        target = out / f"{item.table}-{item.label}.jsonl.gz"
        if item.action == "skip":
            echo(f"skip     {item.table} {item.label} ({item.rows} rows): {item.reason}")
        elif item.action == "done":
            echo(f"done     {item.table} {item.label}: {item.reason}; {item.rows} newer rows stay")
        elif dry_run:
            verb = "would finish" if item.action == "finish" else "would archive"
            echo(f"{verb} {item.table} {item.label}: {item.rows} rows to {item.file or target}, then "
                 + ("drop the partition" if db.is_postgres else "delete them"))
        else:
            out.mkdir(parents=True, exist_ok=True)
            if db.is_postgres:
                _archive_partition(db, item, target, now or datetime.now(timezone.utc))
            else:
                _archive_rows(db, item, target, now or datetime.now(timezone.utc))
            echo(f"archived {item.table} {item.label}: {item.rows} rows to {item.file}")
    return plan


# --- Which months, and whether they may go ---------------------------------------------------------


def _months(conn: Connection, table: str, before: date) -> list[date]:
    if partitions.is_partitioned(conn, table):
        return [m for m in partitions.months(conn, table) if m < before]
    rows = conn.execute(text(f"SELECT DISTINCT strftime('%Y-%m', created_at) FROM {table} "
                             "WHERE created_at < :before"), {"before": _sqlite_instant(before)}).scalars()
    return sorted(date(int(m[:4]), int(m[5:7]), 1) for m in rows if m)


def _sqlite_instant(month: date) -> str:
    return f"{month:%Y-%m-%d} 00:00:00.000000"


def _source(conn: Connection, table: str, month: date) -> str:
    """The rows of `table` in `month`: its partition, or the table with a WHERE (SQLite)."""
    if conn.dialect.name == "postgresql":
        return partitions.partition_name(table, month)
    # SQLite keeps naive UTC text: compare with the same text.
    lower, upper = _sqlite_instant(month), _sqlite_instant(partitions.add_months(month, 1))
    return f"{table} WHERE created_at >= '{lower}' AND created_at < '{upper}'"


def _where(conn: Connection, table: str, month: date) -> tuple[str, str]:
    """(FROM clause, extra condition joiner) for a query on the month's rows."""
    source = _source(conn, table, month)
    return source, (" AND " if " WHERE " in source else " WHERE ")


def _blocked(conn: Connection, table: str, month: date, through: int | None) -> str:
    source, join = _where(conn, table, month)
    if table == "events":
        waiting = conn.execute(text(f"SELECT count(*) FROM {source}{join}(dispatched = false OR notified = false)"
                                    if conn.dialect.name == "postgresql" else
                                    f"SELECT count(*) FROM {source}{join}(dispatched = 0 OR notified = 0)")).scalar_one()
        if waiting:
            return f"{waiting} event(s) not yet sent to webhook endpoints or notified"
        pending = conn.execute(text(
            "SELECT count(*) FROM webhook_deliveries d WHERE d.status = 'pending' AND d.event_seq IN "
            f"(SELECT seq FROM {source})")).scalar_one()
        if pending:
            return f"{pending} webhook delivery(ies) of its events still pending"
    elif table == "webhook_deliveries":
        pending = conn.execute(text(f"SELECT count(*) FROM {source}{join}status = 'pending'")).scalar_one()
        if pending:
            return f"{pending} webhook delivery(ies) still pending"
    elif table == "credit_entries":
        last = conn.execute(text(f"SELECT max(seq) FROM {source}")).scalar()
        if last is not None and (through is None or last > through):
            return (f"the ledger checkpoint covers entries up to {through or 0}, the month's last is {last}: "
                    "run `creditflow ledger check` first")
    return ""


# --- Export ------------------------------------------------------------------------------------------


def _columns(table: str) -> list[tuple[str, str]]:
    """(column, how to write it): "time", "json", "bool" or "plain"."""
    kinds = []
    for column in Base.metadata.tables[table].columns:
        impl = getattr(column.type, "impl", column.type)
        kind = ("time" if isinstance(impl, DateTime) else "json" if isinstance(column.type, JSON)
                else "bool" if isinstance(column.type, Boolean) else "plain")
        kinds.append((column.name, kind))
    return kinds


def _value(value, kind: str):
    if value is None:
        return None
    if kind == "time":
        if isinstance(value, str):  # SQLite: naive UTC text
            value = datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    if kind == "json" and isinstance(value, str):
        return json.loads(value)
    if kind == "bool":
        return bool(value)
    return value


def _lines(conn: Connection, table: str, month: date, through: int | None) -> Iterator[tuple[int, bytes]]:
    key = TABLES[table]
    columns = _columns(table)
    source, join = _where(conn, table, month)
    limit = f"{join}{key} <= :through" if through is not None else ""
    result = conn.execute(text(
        f"SELECT {', '.join(name for name, _ in columns)} FROM {source}{limit} ORDER BY {key}"
    ).execution_options(stream_results=True, yield_per=10_000), {"through": through})
    for row in result:
        record = {name: _value(value, kind) for (name, kind), value in zip(columns, row)}
        yield record[key], (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode()


def _export(conn: Connection, table: str, month: date, target: Path, through: int | None = None) -> tuple[int, int, str]:
    """Write the month's rows to `target` (then its manifest), durably: a temporary file,
    fsynced, renamed into place, and the directory fsynced. Returns (rows, last key, sha256)."""
    digest, rows, last = hashlib.sha256(), 0, 0
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=5, mtime=0) as packed:
            for key, line in _lines(conn, table, month, through):
                packed.write(line)
                digest.update(line)
                rows, last = rows + 1, key
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, target)
    manifest = {"table": table, "month": f"{month:%Y-%m}", "rows": rows, "through_key": last,
                "sha256": digest.hexdigest(), "file": target.name,
                "verify": f"gunzip -c {target.name} | sha256sum; gunzip -c {target.name} | wc -l"}
    _write_durably(target.with_name(f"{table}-{month:%Y-%m}.manifest.json"),
                   (json.dumps(manifest, indent=2) + "\n").encode())
    _fsync_dir(target.parent)
    return rows, last, digest.hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Removing the rows ----------------------------------------------------------------------------


def _add_ledger_sums(conn: Connection, source: str, params: dict) -> None:
    """Add the sums of the ledger entries in `source` to the archived sums."""
    conn.execute(text(f"""
        INSERT INTO ledger_archived_accounts (customer_id, {", ".join(TOTALS)}, entries)
        SELECT customer_id, {ENTRY_SUMS}, COUNT(*) FROM {source} GROUP BY customer_id
        ON CONFLICT (customer_id) DO UPDATE
        SET {", ".join(f"{name} = ledger_archived_accounts.{name} + excluded.{name}" for name in (*TOTALS, "entries"))}
    """), params)
    where = " AND " if " WHERE " in source else " WHERE "
    conn.execute(text(f"""
        INSERT INTO ledger_archived_lots (lot_id, granted, remaining)
        SELECT lot_id, {LOT_SUMS} FROM {source}{where}lot_id IS NOT NULL GROUP BY lot_id
        ON CONFLICT (lot_id) DO UPDATE
        SET granted = ledger_archived_lots.granted + excluded.granted,
            remaining = ledger_archived_lots.remaining + excluded.remaining
    """), params)


def _record(conn: Connection, item: Month, status: str, rows: int, last: int, sha: str, target: Path,
            now: datetime) -> None:
    conn.execute(text("DELETE FROM archived_months WHERE table_name = :t AND month = :m"),
                 {"t": item.table, "m": item.label})
    conn.execute(text(
        "INSERT INTO archived_months (table_name, month, status, rows, through_key, sha256, file, archived_at) "
        "VALUES (:t, :m, :s, :rows, :last, :sha, :file, :now)"),
        {"t": item.table, "m": item.label, "s": status, "rows": rows, "last": last, "sha": sha,
         "file": str(target.resolve()), "now": now})


def _archive_partition(db: Database, item: Month, target: Path, now: datetime) -> None:
    """PostgreSQL: lock, export, sum, detach and drop the month's partition in one transaction."""
    name = partitions.partition_name(item.table, item.month)
    with db.engine.connect() as conn, conn.begin():
        partitions.lock(conn)  # one archive (or partition maker) at a time
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is None:
            item.action = "done"  # another run archived it meanwhile
            return
        conn.execute(text("SET LOCAL lock_timeout = '30s'"))
        conn.execute(text(f"LOCK TABLE {name} IN SHARE MODE"))  # no row added or changed from here on
        through = conn.execute(text("SELECT through_seq FROM ledger_checkpoints WHERE id = 1")).scalar()
        reason = _blocked(conn, item.table, item.month, through)
        if reason:  # changed since the plan
            raise ArchiveRefused(f"{item.table} {item.label}: {reason}")
        rows, last, sha = _export(conn, item.table, item.month, target)
        if item.table == "credit_entries":
            _add_ledger_sums(conn, name, {})
        conn.execute(text(f"ALTER TABLE {item.table} DETACH PARTITION {name}"))
        conn.execute(text(f"DROP TABLE {name}"))
        _record(conn, item, "done", rows, last, sha, target, now)
    item.rows, item.file = rows, target


_NO_DELETE = "credit_entries_no_delete"


def _archive_rows(db: Database, item: Month, target: Path, now: datetime) -> None:
    """SQLite: export and record the month, then delete its rows in batches."""
    key = TABLES[item.table]
    if item.action == "archive":
        with db.transaction() as session:  # the write lock: the month can't change under the export
            conn = session.connection()
            recorded = conn.execute(text("SELECT 1 FROM archived_months WHERE table_name = :t AND month = :m"),
                                    {"t": item.table, "m": item.label}).first() is not None
            if not recorded:  # (else another run exported it meanwhile: finish it)
                through = conn.execute(text("SELECT through_seq FROM ledger_checkpoints WHERE id = 1")).scalar()
                reason = _blocked(conn, item.table, item.month, through)
                if reason:
                    raise ArchiveRefused(f"{item.table} {item.label}: {reason}")
                rows, last, sha = _export(conn, item.table, item.month, target)
                _record(conn, item, "exported", rows, last, sha, target, now)
                item.rows, item.file = rows, target
    with db.engine.connect() as conn:
        record = conn.execute(text("SELECT through_key, file FROM archived_months WHERE table_name = :t AND month = :m"),
                              {"t": item.table, "m": item.label}).one()
    through, item.file = record[0], Path(record[1])
    source, join = _source_sqlite(item.table, item.month)
    while True:
        with db.transaction() as session:
            conn = session.connection()
            batch = f"{source}{join}{key} <= :through AND {key} IN (SELECT {key} FROM {source}{join}{key} <= :through " \
                    f"ORDER BY {key} LIMIT {BATCH})"
            params = {"through": through}
            if item.table == "credit_entries":
                _add_ledger_sums(conn, batch, params)
                trigger = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :n"),
                                       {"n": _NO_DELETE}).scalar_one()
                conn.execute(text(f"DROP TRIGGER {_NO_DELETE}"))  # for this transaction only
                deleted = conn.execute(text(f"DELETE FROM {batch}"), params).rowcount
                conn.execute(text(trigger))
            else:
                deleted = conn.execute(text(f"DELETE FROM {batch}"), params).rowcount
            if deleted < BATCH:
                conn.execute(text("UPDATE archived_months SET status = 'done' WHERE table_name = :t AND month = :m"),
                             {"t": item.table, "m": item.label})
                return


def _source_sqlite(table: str, month: date) -> tuple[str, str]:
    lower, upper = _sqlite_instant(month), _sqlite_instant(partitions.add_months(month, 1))
    return f"{table} WHERE created_at >= '{lower}' AND created_at < '{upper}'", " AND "


def parse_month(value: str, option: str) -> date:
    """`YYYY-MM` as the first day of that month; a clear error naming the option otherwise."""
    try:
        parsed = datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise ValueError(f"{option} must be a month as YYYY-MM (e.g. 2026-01), not {value!r}") from None
    return date(parsed.year, parsed.month, 1)
