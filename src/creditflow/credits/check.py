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
database of any size costs a few scans and no Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

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

_ENTRY_SUMS = f"SELECT customer_id, {ENTRY_SUMS} FROM credit_entries GROUP BY customer_id"

_ACCOUNT_VS_ENTRIES = f"""
    SELECT a.customer_id, a.granted, a.spent, a.expired, a.held, a.available,
           COALESCE(e.granted, 0), COALESCE(e.spent, 0), COALESCE(e.expired, 0), COALESCE(e.held, 0),
           COALESCE(e.available, 0)
    FROM credit_accounts a LEFT JOIN ({_ENTRY_SUMS}) e ON e.customer_id = a.customer_id
    WHERE a.granted <> COALESCE(e.granted, 0) OR a.spent <> COALESCE(e.spent, 0)
       OR a.expired <> COALESCE(e.expired, 0) OR a.held <> COALESCE(e.held, 0)
       OR a.available <> COALESCE(e.available, 0)
"""

_ORPHAN_ENTRIES = """
    SELECT e.customer_id, COUNT(*) FROM credit_entries e
    LEFT JOIN credit_accounts a ON a.customer_id = e.customer_id
    WHERE a.customer_id IS NULL GROUP BY e.customer_id
"""

_CONSERVATION = """
    SELECT customer_id, granted, spent, expired, held, available FROM credit_accounts
    WHERE granted <> spent + expired + held + available
       OR granted < 0 OR spent < 0 OR expired < 0 OR held < 0 OR available < 0
"""

_LOTS_VS_AVAILABLE = """
    SELECT a.customer_id, a.available, COALESCE(l.remaining, 0)
    FROM credit_accounts a
    LEFT JOIN (SELECT customer_id, SUM(remaining) AS remaining FROM credit_lots GROUP BY customer_id) l
           ON l.customer_id = a.customer_id
    WHERE a.available <> COALESCE(l.remaining, 0)
"""

_LOTS_VS_ENTRIES = f"""
    SELECT l.id, l.customer_id, l.granted, l.remaining, COALESCE(e.granted, 0), COALESCE(e.remaining, 0)
    FROM credit_lots l
    LEFT JOIN (
        SELECT lot_id, {LOT_SUMS}
        FROM credit_entries WHERE lot_id IS NOT NULL GROUP BY lot_id
    ) e ON e.lot_id = l.id
    WHERE l.granted <> COALESCE(e.granted, 0) OR l.remaining <> COALESCE(e.remaining, 0)
       OR l.remaining < 0 OR l.remaining > l.granted OR (l.expired_at IS NOT NULL AND l.remaining <> 0)
"""

_HELD_VS_HOLDS = """
    SELECT a.customer_id, a.held, COALESCE(h.held, 0)
    FROM credit_accounts a
    LEFT JOIN (SELECT customer_id, SUM(amount) AS held FROM credit_spends
               WHERE kind = 'hold' AND status = 'held' GROUP BY customer_id) h
           ON h.customer_id = a.customer_id
    WHERE a.held <> COALESCE(h.held, 0)
"""

_SPENT_VS_SPENDS = """
    SELECT a.customer_id, a.spent, COALESCE(s.spent, 0)
    FROM credit_accounts a
    LEFT JOIN (SELECT customer_id,
                      SUM(CASE WHEN kind IN ('spend', 'transfer') THEN amount ELSE settled END) AS spent
               FROM credit_spends
               WHERE refunded_at IS NULL AND (kind IN ('spend', 'transfer') OR status = 'settled')
               GROUP BY customer_id) s
           ON s.customer_id = a.customer_id
    WHERE a.spent <> COALESCE(s.spent, 0)
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
    """What `creditflow ledger check` looked at, and what it found wrong, check by check."""

    customers: int
    lots: int
    entries: int
    spends: int
    found: dict[str, list[str]] = field(default_factory=dict)  # check name -> its problems

    @property
    def problems(self) -> list[str]:
        return [problem for name, _ in CHECKS for problem in self.found.get(name, [])]


def check_ledger(session: Session, *, limit: int = 1000) -> list[str]:
    """Every problem found, as a printable line; an empty list means the ledger is sound."""
    return ledger_report(session, limit=limit).problems


def ledger_report(session: Session, *, limit: int = 1000) -> LedgerReport:
    """Runs every check (`CHECKS`); each lists at most `limit` problems."""
    counts = [session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
              for table in ("credit_accounts", "credit_lots", "credit_entries", "credit_spends")]
    report = LedgerReport(*counts)

    def run(sql: str):
        return session.execute(text(sql + f" LIMIT {int(limit)}")).all()

    def found(name: str) -> list[str]:
        return report.found.setdefault(name, [])

    names = ("granted", "spent", "expired", "held", "available")
    for row in run(_ACCOUNT_VS_ENTRIES):
        stored, summed = row[1:6], row[6:11]
        diffs = ", ".join(f"{name} {_credits(s)} but entries say {_credits(e)}"
                          for name, s, e in zip(names, stored, summed) if s != e)
        found("totals").append(f"{row[0]}: account totals disagree with the ledger entries: {diffs}")
    for customer_id, count in run(_ORPHAN_ENTRIES):
        found("orphans").append(f"{customer_id}: {count} ledger entries without a credit account")
    for customer_id, granted, spent, expired, held, available in run(_CONSERVATION):
        found("conservation").append(
            f"{customer_id}: granted {_credits(granted)} != spent {_credits(spent)} + expired "
            f"{_credits(expired)} + held {_credits(held)} + available {_credits(available)}"
            " (or a total is negative)")
    for customer_id, available, remaining in run(_LOTS_VS_AVAILABLE):
        found("lots").append(f"{customer_id}: available {_credits(available)} but the lots hold {_credits(remaining)}")
    for lot_id, customer_id, granted, remaining, e_granted, e_remaining in run(_LOTS_VS_ENTRIES):
        found("lot_entries").append(
            f"{customer_id}: lot {lot_id} has granted {_credits(granted)}, remaining {_credits(remaining)}; "
            f"its entries say granted {_credits(e_granted)}, remaining {_credits(e_remaining)}")
    for customer_id, held, holds in run(_HELD_VS_HOLDS):
        found("holds").append(f"{customer_id}: held {_credits(held)} but open holds reserve {_credits(holds)}")
    for customer_id, spent, spends in run(_SPENT_VS_SPENDS):
        found("spends").append(f"{customer_id}: spent {_credits(spent)} but the spends add up to {_credits(spends)}")
    return report
