"""A member's monthly usage, checked and counted inside the spend, hold or refund that moves it.

The credit use cases run on a DBAPI cursor of their own unit of work (see `credits.book.run`),
with the team's credit account already locked, so these functions take that cursor (anything
with `.dialect` and `.raw`) and run plain SQL on it. The member's row is locked too (FOR UPDATE
on PostgreSQL; SQLite's write transaction holds the database), so a member's usage is exact
however many spends of the team run at once: each reads and moves it under both locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from creditflow.kit.credits import Credits
from creditflow.kit.errors import Forbidden, InsufficientCredits, InvalidRequest, NotFound
from creditflow.kit.periods import month_boundary, month_index_at


def period_key(anchor: datetime, now: datetime) -> str:
    """The start of the monthly period (counted from `anchor`) that holds `now`, as an ISO
    instant: what `used_period` holds."""
    start = month_boundary(anchor, max(0, month_index_at(anchor, now)))
    return start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def period_start(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Charge:
    """What a member's spend counted: against which member, in which period."""

    member_id: str
    period: str
    used: Credits  # the member's usage this period after it


def _sql(cursor, text: str) -> str:
    return text.replace("%s", "?") if cursor.dialect.name == "sqlite" else text


def _instant(cursor, value: datetime):
    value = value.astimezone(timezone.utc)
    if cursor.dialect.name == "sqlite":  # stored as SQLAlchemy stores it there: naive UTC text
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _read_instant(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def team_anchor(cursor, customer_id: str) -> datetime | None:
    """The team's anchor, or None when the customer is not a team."""
    cursor.raw.execute(_sql(cursor, "SELECT anchor FROM teams WHERE customer_id = %s"), (customer_id,))
    row = cursor.raw.fetchone()
    return None if row is None else _read_instant(row[0])


def check_member_given(cursor, customer_id: str, member: str | None) -> datetime | None:
    """Refuse a spend that names no member on a team, or names one elsewhere; the team's
    anchor (None: not a team)."""
    anchor = team_anchor(cursor, customer_id)
    if anchor is None and member is not None:
        raise InvalidRequest("member is only for a team's spends: this customer has no members",
                             code="not_a_team", param="member")
    if anchor is not None and member is None:
        raise InvalidRequest("this customer is a team: name the member who spends", code="member_required",
                             param="member")
    return anchor


def charge_member(cursor, customer_id: str, member: str | None, amount: Credits, *, spend_id: str,
                  reference: str, now: datetime) -> Charge | None:
    """Count `amount` against `member`'s usage this month, refusing it over their limit.

    Errors: InvalidRequest `member_required` / `not_a_team`, NotFound (member), Forbidden
    `member_inactive` (invited, suspended or removed), InsufficientCredits
    `member_limit_reached`. Called after the spend's replay check and before it is written, in
    its transaction: a refusal leaves nothing changed."""
    if member is None:
        check_member_given(cursor, customer_id, member)  # refused on a team
        return None
    # The team's anchor and the member's row (locked) in one round trip; no row: not a team, or not
    # this team's member (the error path tells which).
    lock = "" if cursor.dialect.name == "sqlite" else " FOR UPDATE OF m"
    cursor.raw.execute(_sql(cursor, "SELECT t.anchor, m.status, m.monthly_limit, m.used, m.used_period FROM teams t "
                                    "JOIN team_members m ON m.customer_id = t.customer_id "
                                    "WHERE m.id = %s AND t.customer_id = %s" + lock), (member, customer_id))
    row = cursor.raw.fetchone()
    if row is None:
        check_member_given(cursor, customer_id, member)  # not a team
        raise NotFound(f"no member {member} in this team", param="member")
    anchor, status, limit, used, used_period = _read_instant(row[0]), *row[1:]
    if status != "active":
        raise Forbidden(f"the member is {status}: only active members spend", code="member_inactive",
                        param="member")
    period = period_key(anchor, now)
    used = used if used_period == period else 0
    if limit is not None and used + amount.milli > limit:
        left = Credits(max(0, limit - used))
        raise InsufficientCredits(
            f"the member's monthly limit is {Credits(limit)} credits; {left} left until the team's next "
            f"monthly boundary", code="member_limit_reached", param="member",
            extra={"limit": str(Credits(limit)), "used": str(Credits(used)),
                   "resets_at": _next_boundary(anchor, now)})
    used += amount.milli
    update = "UPDATE team_members SET used = %s, used_period = %s WHERE id = %s"
    insert = ("INSERT INTO team_spends (id, customer_id, reference, member_id, counted, period, created_at) "
              "VALUES (%s, %s, %s, %s, %s, %s, %s)")
    row = (spend_id, customer_id, reference, member, amount.milli, period, _instant(cursor, now))
    if cursor.dialect.name == "sqlite":
        cursor.raw.execute(_sql(cursor, update), (used, period, member))
        cursor.raw.execute(_sql(cursor, insert), row)
    else:  # one round trip
        cursor.raw.execute(f"WITH counted AS ({update}) {insert}", (used, period, member, *row))
    return Charge(member, period, Credits(used))


def give_back(cursor, customer_id: str, reference: str, amount: Credits | None, *, now: datetime) -> None:
    """A team's spend refunded, or a hold released (all of it) or settled for less (the rest):
    what it counted comes off the member's usage if that is still the same month. `amount` None:
    all of it."""
    cursor.raw.execute(_sql(cursor, "SELECT s.member_id, s.counted, s.period, m.used, m.used_period "
                                    "FROM team_spends s JOIN team_members m ON m.id = s.member_id "
                                    "WHERE s.customer_id = %s AND s.reference = %s"), (customer_id, reference))
    row = cursor.raw.fetchone()
    if row is None:
        return
    member_id, counted, period, used, used_period = row
    back = counted if amount is None else min(counted, amount.milli)
    if back <= 0:
        return
    cursor.raw.execute(_sql(cursor, "UPDATE team_spends SET counted = %s WHERE customer_id = %s AND reference = %s"),
                       (counted - back, customer_id, reference))
    if used_period == period:
        cursor.raw.execute(_sql(cursor, "UPDATE team_members SET used = %s WHERE id = %s"),
                           (max(0, used - back), member_id))


def _next_boundary(anchor: datetime, now: datetime) -> str:
    start = month_boundary(anchor, max(0, month_index_at(anchor, now)) + 1)
    return start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
