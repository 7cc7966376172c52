"""The conservation check behind `creditflow ledger check`, over the whole database.

For every customer:
- the stored account totals equal the sums of the ledger entries, and
  granted = spent + expired + held + available;
- the lots' remaining credits add up to `available`, and each lot's remaining equals its own
  entries (granted - spent - held - expired + refunded + released);
- `held` equals what the open holds reserve, and `spent` what the unrefunded spends, settled
  holds and transfers sent took;
- nothing is negative, no lot holds more than it was granted, and an expired lot holds nothing.

Each check is one aggregate query that returns only the rows that are wrong, so a clean
database costs a few index scans per range of customers and no Python loops.

Incremental: a clean check leaves a checkpoint, the sums of every entry up to the last one it
verified, per customer and per lot (entries are append-only, so those sums never change). The
next check looks only at the customers with entries after it, and proves their totals and lots
equal the checkpoint's sums plus their new entries: its cost follows what changed, not how
long the ledger is. A change made without a ledger entry (a row edited by hand) is found by
the full check, which an operator runs on a schedule.

Archived entries (`creditflow archive` exported and removed them, only ever entries the
checkpoint had summed) live on as sums per customer and per lot: the full check adds the
entries still in the database to them, and a checkpoint rebuilt from scratch starts from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from creditflow.kit.db import Database

# What one ledger entry adds to each account total (and to its lot's `granted` and `remaining`):
# the only place the check says which way each kind of entry moves credits.
GRANTED = "CASE WHEN kind = 'grant' THEN amount ELSE 0 END"
SPENT = "CASE WHEN kind IN ('spend', 'settle') THEN amount WHEN kind = 'refund' THEN -amount ELSE 0 END"
EXPIRED = "CASE WHEN kind = 'expire' THEN amount ELSE 0 END"
HELD = "CASE WHEN kind = 'hold' THEN amount WHEN kind IN ('release', 'settle') THEN -amount ELSE 0 END"
AVAILABLE = ("CASE WHEN kind IN ('grant', 'refund', 'release') THEN amount "
             "WHEN kind IN ('spend', 'expire', 'hold') THEN -amount ELSE 0 END")
TOTALS = ("granted", "spent", "expired", "held", "available")
# Each total as `SUM(<expression>) AS <name>`, for a GROUP BY over entries.
ENTRY_SUMS = ", ".join(f"SUM({expr}) AS {name}"
                       for name, expr in zip(TOTALS, (GRANTED, SPENT, EXPIRED, HELD, AVAILABLE)))
LOT_SUMS = f"SUM({GRANTED}) AS granted, SUM({AVAILABLE}) AS remaining"


# A check runs over a scope of customers: every customer in one range of ids (the full check,
# range by range), or those with ledger entries after the last checkpoint (the incremental
# check). `expected` sums a customer's or a lot's entries in scope and, when incremental, adds
# what the checkpoint summed before it.


@dataclass(frozen=True)
class _Scope:
    incremental: bool
    last_range: bool = False  # the full check's last range has no upper bound

    def customers(self, column: str) -> str:
        if self.incremental:  # a batch of the customers with new entries
            return f"{column} IN :ids"
        return f"{column} > :after" + ("" if self.last_range else f" AND {column} <= :upto")

    @property
    def entries(self) -> str:
        """The entries to add up: the batch's entries after the checkpoint (through the index
        on customer and entry number), or those of the range's customers."""
        return f"{self.customers('customer_id')} AND seq > :since" if self.incremental else self.customers("customer_id")

    def expected(self, name: str, summed: str = "e", baseline: str = "c") -> str:
        """The entries' sum plus the baseline's: the checkpoint's (incremental) or, for the full
        check, the sums of the entries `creditflow archive` removed."""
        return f"(COALESCE({summed}.{name}, 0) + COALESCE({baseline}.{name}, 0))"

    def baseline(self, what: str) -> str:
        """The table of sums the entries in scope add to, per "accounts" or "lots"."""
        return f"ledger_checkpoint_{what}" if self.incremental else f"ledger_archived_{what}"


def _account_vs_entries(scope: _Scope) -> str:
    baseline = f"LEFT JOIN {scope.baseline('accounts')} c ON c.customer_id = a.customer_id"
    expected = [scope.expected(name) for name in TOTALS]
    differs = " OR ".join(f"a.{name} <> {exp}" for name, exp in zip(TOTALS, expected))
    return f"""
        SELECT a.customer_id, a.granted, a.spent, a.expired, a.held, a.available, {", ".join(expected)}
        FROM credit_accounts a
        LEFT JOIN (SELECT customer_id, {ENTRY_SUMS} FROM credit_entries WHERE {scope.entries}
                   GROUP BY customer_id) e ON e.customer_id = a.customer_id
        {baseline}
        WHERE {scope.customers("a.customer_id")} AND ({differs})
    """


def _orphan_entries(scope: _Scope) -> str:
    where = "e.seq > :since" if scope.incremental else scope.customers("e.customer_id")
    return f"""
        SELECT e.customer_id, COUNT(*) FROM credit_entries e
        LEFT JOIN credit_accounts a ON a.customer_id = e.customer_id
        WHERE {where} AND a.customer_id IS NULL GROUP BY e.customer_id
    """


def _conservation(scope: _Scope) -> str:
    return f"""
        SELECT customer_id, granted, spent, expired, held, available FROM credit_accounts
        WHERE {scope.customers("customer_id")}
          AND (granted <> spent + expired + held + available
               OR granted < 0 OR spent < 0 OR expired < 0 OR held < 0 OR available < 0)
    """


def _lots_vs_available(scope: _Scope) -> str:
    # Incremental: only open lots count, as every lot that expired is proven to hold nothing
    # (by the lot check of the check that saw its expiry), which keeps a customer's years of
    # expired daily lots out of it.
    open_only = " AND expired_at IS NULL" if scope.incremental else ""
    return f"""
        SELECT a.customer_id, a.available, COALESCE(l.remaining, 0)
        FROM credit_accounts a
        LEFT JOIN (SELECT customer_id, SUM(remaining) AS remaining FROM credit_lots
                   WHERE {scope.customers("customer_id")}{open_only} GROUP BY customer_id) l
               ON l.customer_id = a.customer_id
        WHERE {scope.customers("a.customer_id")} AND a.available <> COALESCE(l.remaining, 0)
    """


def _lots_vs_entries(scope: _Scope) -> str:
    baseline = f"LEFT JOIN {scope.baseline('lots')} c ON c.lot_id = l.id"
    granted, remaining = scope.expected("granted"), scope.expected("remaining")
    # Incremental: the lots with new entries (a lot changes only through its entries).
    lots = (f"l.id IN (SELECT lot_id FROM credit_entries WHERE {scope.entries})" if scope.incremental
            else scope.customers("l.customer_id"))
    return f"""
        SELECT l.id, l.customer_id, l.granted, l.remaining, {granted}, {remaining}
        FROM credit_lots l
        LEFT JOIN (SELECT lot_id, {LOT_SUMS} FROM credit_entries
                   WHERE {scope.entries} AND lot_id IS NOT NULL GROUP BY lot_id) e ON e.lot_id = l.id
        {baseline}
        WHERE {lots}
          AND (l.granted <> {granted} OR l.remaining <> {remaining} OR l.remaining < 0
               OR l.remaining > l.granted OR (l.expired_at IS NOT NULL AND l.remaining <> 0))
    """


def _held_vs_holds(scope: _Scope) -> str:
    # Incremental: open holds, found through the index of open holds (they are few, and
    # short-lived), rather than through every spend row of each customer.
    held = "1 = 1" if scope.incremental else scope.customers("customer_id")
    return f"""
        SELECT a.customer_id, a.held, COALESCE(h.held, 0)
        FROM credit_accounts a
        LEFT JOIN (SELECT customer_id, SUM(amount) AS held FROM credit_spends
                   WHERE {held} AND kind = 'hold' AND status = 'held'
                   GROUP BY customer_id) h
               ON h.customer_id = a.customer_id
        WHERE {scope.customers("a.customer_id")} AND a.held <> COALESCE(h.held, 0)
    """


def _spent_vs_spends(scope: _Scope) -> str:
    return f"""
        SELECT a.customer_id, a.spent, COALESCE(s.spent, 0)
        FROM credit_accounts a
        LEFT JOIN (SELECT customer_id,
                          SUM(CASE WHEN kind IN ('spend', 'transfer') THEN amount ELSE settled END) AS spent
                   FROM credit_spends
                   WHERE {scope.customers("customer_id")} AND refunded_at IS NULL
                     AND (kind IN ('spend', 'transfer') OR status = 'settled')
                   GROUP BY customer_id) s
               ON s.customer_id = a.customer_id
        WHERE {scope.customers("a.customer_id")} AND a.spent <> COALESCE(s.spent, 0)
    """


def _credits(milli) -> str:
    from creditflow.kit.credits import Credits

    return str(Credits(int(milli)))


# What each check verifies, in the order they run (the report names them).
CHECKS = (
    ("totals", "every account's totals equal the sums of its ledger entries"),
    ("orphans", "every ledger entry belongs to a credit account"),
    ("conservation", "granted = spent + expired + held + available, and no total is negative"),
    ("lots", "the lots' remaining credits add up to what is available"),
    ("lot_entries", "each lot's granted and remaining equal its own entries"),
    ("holds", "held equals what the open holds reserve"),
    ("spends", "spent equals what the spends and settled holds took"),
)


@dataclass
class LedgerReport:
    """What `creditflow ledger check` looked at, and what it found wrong, check by check.

    An incremental check counts what it looked at: the customers with new entries, their lots
    and spends, and the new entries; `since` is the checkpoint it started from."""

    customers: int
    lots: int
    entries: int
    spends: int
    found: dict[str, list[str]] = field(default_factory=dict)  # check name -> its problems
    since: int | None = None  # incremental: the last entry the checkpoint had summed

    @property
    def problems(self) -> list[str]:
        return [problem for name, _ in CHECKS for problem in self.found.get(name, [])]


def check_ledger(session: Session, *, limit: int = 1000) -> list[str]:
    """Every problem found, as a printable line; an empty list means the ledger is sound."""
    return ledger_report(session, limit=limit).problems


def ledger_report(session: Session, *, limit: int = 1000, accounts_per_range: int = 10_000,
                  progress: Callable[[int, int], None] | None = None) -> LedgerReport:
    """The full check: every check (`CHECKS`) over every customer, each listing at most `limit`
    problems. It runs range by range of customer ids (`accounts_per_range` accounts each), so
    that each query touches one range's rows through the customer indexes and `progress(done,
    total)` can be told after each range."""
    counts = [session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
              for table in ("credit_accounts", "credit_lots", "credit_entries", "credit_spends")]
    report = LedgerReport(*counts)
    after, done = "", 0
    while True:
        upto = session.execute(text(
            "SELECT customer_id FROM credit_accounts WHERE customer_id > :after ORDER BY customer_id "
            "LIMIT 1 OFFSET :skip"), {"after": after, "skip": accounts_per_range - 1}).scalar()
        scope = _Scope(incremental=False, last_range=upto is None)
        _run_checks(session, scope, {"after": after, "upto": upto}, report, limit)
        done = report.customers if upto is None else done + accounts_per_range
        if progress is not None:
            progress(done, report.customers)
        if upto is None:
            return report
        after = upto


def incremental_report(session: Session, since: int, *, limit: int = 1000, batch: int = 1000) -> LedgerReport:
    """Every check, over the customers with ledger entries after `since` (a checkpoint's last
    entry): their totals and lots must equal the checkpoint's sums plus their new entries.

    The customers are checked `batch` at a time, by id: a list the planner knows the size of,
    so every query goes through the customer indexes instead of scanning tables."""
    params = {"since": since}
    touched = session.execute(text(
        "SELECT DISTINCT customer_id FROM credit_entries WHERE seq > :since ORDER BY customer_id"), params).scalars().all()
    entries = session.execute(text("SELECT COUNT(*) FROM credit_entries WHERE seq > :since"), params).scalar_one()
    report = LedgerReport(len(touched), 0, entries, 0, since=since)
    scope = _Scope(incremental=True)
    for start in range(0, len(touched), batch):
        ids = {**params, "ids": touched[start:start + batch]}
        for table in ("credit_lots", "credit_spends"):
            counted = _execute(session, f"SELECT COUNT(*) FROM {table} WHERE {scope.customers('customer_id')}", ids)
            if table == "credit_lots":
                report.lots += counted.scalar_one()
            else:
                report.spends += counted.scalar_one()
        _run_checks(session, scope, ids, report, limit, orphans=False)
    for customer_id, count in session.execute(text(_orphan_entries(scope) + f" LIMIT {int(limit)}"), params):
        report.found.setdefault("orphans", []).append(
            f"{customer_id}: {count} ledger entries without a credit account")
    return report


def _execute(session: Session, sql: str, params: dict):
    statement = text(sql)
    if "ids" in params:
        statement = statement.bindparams(bindparam("ids", expanding=True))
    return session.execute(statement, params)


def _run_checks(session: Session, scope: _Scope, params: dict, report: LedgerReport, limit: int, *,
                orphans: bool = True) -> None:
    def run(name: str, sql: str):
        if name == "orphans" and not orphans:
            return []
        room = limit - len(report.found.get(name, []))
        return _execute(session, sql + f" LIMIT {room}", params).all() if room > 0 else []

    def found(name: str) -> list[str]:
        return report.found.setdefault(name, [])

    for row in run("totals", _account_vs_entries(scope)):
        stored, summed = row[1:6], row[6:11]
        diffs = ", ".join(f"{name} {_credits(s)} but entries say {_credits(e)}"
                          for name, s, e in zip(TOTALS, stored, summed) if s != e)
        found("totals").append(f"{row[0]}: account totals disagree with the ledger entries: {diffs}")
    for customer_id, count in run("orphans", _orphan_entries(scope)):
        found("orphans").append(f"{customer_id}: {count} ledger entries without a credit account")
    for customer_id, granted, spent, expired, held, available in run("conservation", _conservation(scope)):
        found("conservation").append(
            f"{customer_id}: granted {_credits(granted)} != spent {_credits(spent)} + expired "
            f"{_credits(expired)} + held {_credits(held)} + available {_credits(available)}"
            " (or a total is negative)")
    for customer_id, available, remaining in run("lots", _lots_vs_available(scope)):
        found("lots").append(f"{customer_id}: available {_credits(available)} but the lots hold {_credits(remaining)}")
    for lot_id, customer_id, granted, remaining, e_granted, e_remaining in run("lot_entries", _lots_vs_entries(scope)):
        found("lot_entries").append(
            f"{customer_id}: lot {lot_id} has granted {_credits(granted)}, remaining {_credits(remaining)}; "
            f"its entries say granted {_credits(e_granted)}, remaining {_credits(e_remaining)}")
    for customer_id, held, holds in run("holds", _held_vs_holds(scope)):
        found("holds").append(f"{customer_id}: held {_credits(held)} but open holds reserve {_credits(holds)}")
    for customer_id, spent, spends in run("spends", _spent_vs_spends(scope)):
        found("spends").append(f"{customer_id}: spent {_credits(spent)} but the spends add up to {_credits(spends)}")


# --- Checkpoints ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerCheck:
    """One run of `creditflow ledger check`: its report, and the checkpoint it left."""

    report: LedgerReport
    through: int  # the last entry verified (every entry up to it was committed before the check)
    saved: bool  # the checkpoint now stands at `through` (only a clean check moves it)


def run_ledger_check(db: Database, *, full: bool = False, limit: int = 1000,
                     progress: Callable[[int, int], None] | None = None) -> LedgerCheck:
    """Check the ledger, incrementally from the last checkpoint unless `full` (or there is none),
    and when nothing is wrong move the checkpoint to what was verified.

    Three transactions, in this order: the high-water mark (every entry up to it committed),
    the check in one snapshot taken after it, then the checkpoint's new sums. The sums need no
    snapshot: they add up entries up to the mark, and entries never change."""
    through = _high_water_mark(db)
    with db.transaction(readonly=True) as session:
        if db.is_postgres:  # one snapshot for every query of the check
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        since = None if full else session.execute(
            text("SELECT through_seq FROM ledger_checkpoints WHERE id = 1")).scalar()
        report = (ledger_report(session, limit=limit, progress=progress) if since is None
                  else incremental_report(session, since, limit=limit))
    saved = False
    if not report.problems:
        with db.transaction() as session:
            saved = _save_checkpoint(session, since, through, now=datetime.now(timezone.utc))
    return LedgerCheck(report, through, saved)


def _high_water_mark(db: Database) -> int:
    """The last ledger entry such that it and every entry before it are committed.

    PostgreSQL hands out entry numbers before commit, so a transaction still open may hold a
    lower number than one already committed: a SHARE lock on the table waits for every open
    writer to finish (and holds new ones back only for that instant). SQLite has one writer at
    a time, which numbers its entries above every committed one."""
    with db.transaction(readonly=db.is_sqlite) as session:
        if db.is_postgres:
            session.execute(text("LOCK TABLE credit_entries IN SHARE MODE"))
        return session.execute(text("SELECT COALESCE(MAX(seq), 0) FROM credit_entries")).scalar_one()


def _save_checkpoint(session: Session, since: int | None, through: int, *, now: datetime) -> bool:
    """Move the checkpoint from `since` (None: rebuild it whole) to `through`; False when another
    check moved it meanwhile (its sums stand, and are as good)."""
    lock = " FOR UPDATE" if session.bind.dialect.name == "postgresql" else ""
    current = session.execute(text(f"SELECT through_seq FROM ledger_checkpoints WHERE id = 1{lock}")).scalar()
    params = {"since": since or 0, "through": through, "now": now}
    archived = 0
    if since is None:
        if current is not None and current > through:
            return False
        for table in ("ledger_checkpoint_accounts", "ledger_checkpoint_lots"):
            session.execute(text(f"DELETE FROM {table}"))
        # Rebuilt whole: from the sums of the entries `creditflow archive` removed (all of them
        # before any entry still here), then every entry up to `through`.
        session.execute(text(f"INSERT INTO ledger_checkpoint_accounts (customer_id, {', '.join(TOTALS)}) "
                             f"SELECT customer_id, {', '.join(TOTALS)} FROM ledger_archived_accounts"))
        session.execute(text("INSERT INTO ledger_checkpoint_lots (lot_id, granted, remaining) "
                             "SELECT lot_id, granted, remaining FROM ledger_archived_lots"))
        archived = session.execute(text("SELECT COALESCE(SUM(entries), 0) FROM ledger_archived_accounts")).scalar_one()
    elif current != since:
        return False
    if since is not None and through <= since:
        session.execute(text("UPDATE ledger_checkpoints SET checked_at = :now WHERE id = 1"), params)
        return True
    # The new entries' sums, added to what the checkpoint had (no join with the table being
    # written: the upsert's own conflict adds them).
    new = "seq > :since AND seq <= :through"
    session.execute(text(f"""
        INSERT INTO ledger_checkpoint_accounts (customer_id, {", ".join(TOTALS)})
        SELECT customer_id, {ENTRY_SUMS} FROM credit_entries WHERE {new} GROUP BY customer_id
        ON CONFLICT (customer_id) DO UPDATE
        SET {", ".join(f"{name} = ledger_checkpoint_accounts.{name} + excluded.{name}" for name in TOTALS)}
    """), params)
    session.execute(text(f"""
        INSERT INTO ledger_checkpoint_lots (lot_id, granted, remaining)
        SELECT lot_id, {LOT_SUMS} FROM credit_entries WHERE {new} AND lot_id IS NOT NULL GROUP BY lot_id
        ON CONFLICT (lot_id) DO UPDATE
        SET granted = ledger_checkpoint_lots.granted + excluded.granted,
            remaining = ledger_checkpoint_lots.remaining + excluded.remaining
    """), params)
    added = session.execute(text(f"SELECT COUNT(*) FROM credit_entries WHERE {new}"), params).scalar_one() + archived
    if current is None:
        session.execute(text("INSERT INTO ledger_checkpoints (id, through_seq, entries, checked_at) "
                             "VALUES (1, :through, :added, :now)"), {**params, "added": added})
    else:
        session.execute(text(
            "UPDATE ledger_checkpoints SET through_seq = :through, checked_at = :now, "
            f"entries = {'entries + ' if since is not None else ''}:added WHERE id = 1"), {**params, "added": added})
    return True
