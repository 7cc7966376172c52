"""Spending credits and refunding a spend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from psycopg import sql
from sqlalchemy import and_, bindparam, exists, select
from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog, Feature
from creditflow.credits import inputs
from creditflow.credits import repository as repo
from creditflow.credits.access import (ALL_KINDS, PAID_KINDS, Standing, free_day, gets_free_credits, lot_kinds_for,
                                       reset_timezone)
from creditflow.credits.book import Book, run, run_statement, write_plain_spend
from creditflow.credits.ledger import Draw, Lot, allocate, draws_from_json, draws_to_json, split_settlement
from creditflow.credits.limits import admit, governed
from creditflow.kit import metrics
from creditflow.kit.clock import format_instant, utc
from creditflow.kit.credits import Credits
from creditflow.kit.db import grouped
from creditflow.kit.errors import Conflict, CreditflowError, NotFound
from creditflow.kit.ids import new_id
from creditflow.team.models import Team
from creditflow.team.usage import charge_member
from creditflow.team.usage import give_back as give_back_usage


@dataclass(frozen=True)
class SpendResult:
    """What a spend did: the lots it drew from and the customer's available credits after.

    A repeat of the same reference returns the first result (`replayed` is then True)."""

    id: str
    customer_id: str
    reference: str
    amount: Credits
    feature: str
    draws: tuple[Draw, ...]
    balance: Credits
    status: str  # spent | refunded
    created_at: datetime
    replayed: bool = False
    queue: str | None = None  # fast | relaxed, for a feature the plan limits (credits/limits.py)


@dataclass(frozen=True)
class RefundResult:
    customer_id: str
    reference: str
    amount: Credits  # what the spend had taken
    returned: tuple[Draw, ...]  # what went back to each lot
    expired: Credits  # of `amount`, what went back to lots that have expired since
    balance: Credits
    refunded_at: datetime


def spend_credits(ctx, customer_id: str, *, amount, feature: str, reference: str,
                  member: str | None = None, free_until: datetime | None = None) -> SpendResult:
    """Spend `amount` on `feature` for the host app's job `reference`, atomically.

    Errors: InvalidRequest (amount, reference, `unknown_feature`), NotFound (customer),
    Forbidden `subscription_required` / `feature_not_in_plan`, Conflict `reference_reused`,
    InsufficientCredits `insufficient_credits`. On any error nothing changes. Each outcome is
    counted (`creditflow_spends_total`).

    On a team `member` names who spends (see `team.usage.charge_member` for its errors: a team
    needs it, any other customer refuses it, and a member's monthly limit is enforced).

    A plan's limits and unlimited windows apply (credits/limits.py): LimitReached past a limit;
    before `free_until` (the end of the customer's unlimited window) the spend costs 0.
    """
    try:
        result = _spend_credits(ctx, customer_id, amount, feature, reference, member, free_until)
    except Exception as exc:
        metrics.count_spend(exc)
        raise
    metrics.count_spend(result)
    return result


def queue_spend(ctx, customer_id: str, *, amount, feature: str, reference: str,
                on_done: Callable[[SpendResult | None], None]) -> bool:
    """Hand a usual spend to the SQLite database's grouped writer and return at once, for a caller
    that must not wait (an event loop). True when queued: `on_done(result)` is then called from
    the writer's thread once the spend is committed, or with None, nothing written, when the
    general path must answer it (`spend_credits` then does, a refusal included). False, with
    nothing queued, when the writer does not take this spend: not SQLite, bad input, a feature a
    plan limits. A spend queued here is counted as `spend_credits` counts it."""
    if not ctx.db.is_sqlite:
        return False
    try:
        feature_def = ctx.catalog.feature(feature)
        work = _usual_spend(ctx, inputs.identifier(customer_id, "customer"), inputs.positive_amount(amount),
                            feature_def, inputs.reference(reference))
    except CreditflowError:  # the general path refuses it, and counts it
        return False
    if feature_def.code in governed(ctx.catalog):
        return False
    grouped.queue(ctx.db, work, _counted(on_done))
    return True


def _counted(on_done: Callable[[SpendResult | None], None]) -> Callable[[SpendResult | None], None]:
    def done(result: SpendResult | None) -> None:
        if result is not None:  # None: the general path answers, and counts
            metrics.count_spend(result)
        on_done(result)

    return done


def _spend_credits(ctx, customer_id: str, amount, feature: str, reference: str,
                   member: str | None = None, free_until: datetime | None = None) -> SpendResult:
    amount = inputs.positive_amount(amount)
    feature_def = ctx.catalog.feature(feature)
    reference = inputs.reference(reference)
    customer_id = inputs.identifier(customer_id, "customer")
    # A feature with limits or windows takes the general path.
    usual = free_until is None and feature_def.code not in governed(ctx.catalog)
    if usual and ctx.db.is_postgres:
        done = run_statement(ctx, lambda cursor: _spend_in_database(ctx, cursor, customer_id, amount, feature_def,
                                                                    reference, member))
        if done is not None:
            return done
    elif usual and member is None and ctx.db.is_sqlite:
        done = _spend_on_sqlite(ctx, customer_id, amount, feature_def, reference)
        if done is not None:
            return done
    return run(ctx, lambda cursor: _spend(ctx, cursor, customer_id, amount, feature_def, reference, member=member,
                                          free_until=free_until))


def _spend(ctx, cursor: repo.UnitCursor, customer_id: str, amount: Credits, feature: Feature, reference: str, *,
           member: str | None = None, free_until: datetime | None = None) -> SpendResult:
    book = Book.lock(ctx, cursor, customer_id)
    existing, plan, open_lots = repo.spend_plan_and_lots(cursor, customer_id, reference)
    if existing is not None:
        return _replay(existing, customer_id, amount, feature.code)
    book.load(open_lots)
    return _spend_from(ctx, book, plan, feature, amount, reference, member=member, free_until=free_until)


def _spend_from(ctx, book: Book, plan: str | None, feature: Feature, amount: Credits, reference: str, *,
                member: str | None = None, free_until: datetime | None = None,
                member_checked: bool = False) -> SpendResult:
    """The spend, once its book is loaded and the reference is known to be new. With
    `member_checked`, the caller has made sure the customer is no team (and no member is named)."""
    admitted = admit(ctx, book, plan, feature, amount, kind="spend", reference=reference, free_until=free_until)
    amount = admitted.amount  # 0 inside an unlimited window
    draws = draw_for(ctx, book, Standing(plan), feature, amount) if amount else []
    spend_id = new_id("spd")
    if not member_checked:
        charge_member(book.cursor, book.customer_id, member, amount, spend_id=spend_id, reference=reference,
                      now=book.now)
    take_and_record(book, draws, "spend", spend_id, reference, feature, amount, queue=admitted.queue)
    return SpendResult(spend_id, book.customer_id, reference, amount, feature.code, tuple(draws), book.available,
                       "spent", book.now, queue=admitted.queue)


# -- the usual spend on SQLite -------------------------------------------------------------------
#
# What the general path reads in three statements after BEGIN IMMEDIATE (the account with the
# customer's time zone and test clock; the reference, the plan and the open lots; whether the
# customer is a team), read in one; then the same draws and the same rows, written directly for a
# plain spend (below) and through the book (`_spend_from`) otherwise. Anything else (no account
# yet, a replay, a team, a refusal, a database error) is rolled back and takes the general path,
# which then answers it as it always has.
#
# On SQLite the usual spends go through the grouped writer (kit/db/grouped.py): those that arrive
# while a commit waits for the disk are written together in the next transaction, each in its
# savepoint, with one commit for all, on a connection of the writer's own (no pool check-out per
# spend). None is answered before the commit that holds it. A thread that calls `spend_credits`
# writes its spend itself, with whatever else waits; spends queued by `queue_spend` (the API's
# event loop) are written by the writer's thread, so that the loop does not lend a thread of its
# pool to each spend.

_teams = Team.__table__
_usual_read = repo.CompiledStatement(
    select(*(repo.accounts.c[name] for name in repo.TOTALS), repo.accounts.c.free_day, repo.accounts.c.plan,
           repo.customers.c.timezone, repo.customers.c.test_clock_id, repo.clocks.c.frozen_time,
           exists().where(_teams.c.customer_id == repo.accounts.c.customer_id).label("is_team"),
           repo.spends.c.id.label("existing"),
           *(repo.lots.c[name].label(f"lot_{name}") for name in ("id", "kind", "remaining", "expires_at",
                                                                  "created_at")))
    .select_from(
        repo.accounts
        .join(repo.customers, repo.customers.c.id == repo.accounts.c.customer_id)
        .outerjoin(repo.clocks, repo.clocks.c.id == repo.customers.c.test_clock_id)
        .outerjoin(repo.spends, and_(repo.spends.c.customer_id == repo.accounts.c.customer_id,
                                     repo.spends.c.reference == bindparam("reference")))
        .outerjoin(repo.lots, and_(repo.lots.c.customer_id == repo.accounts.c.customer_id,
                                   repo.lots.c.remaining > repo.ZERO, repo.lots.c.expired_at.is_(None))))
    .where(repo.accounts.c.customer_id == bindparam("customer_id"))
)
# The read's columns, in the order `_spend_usual` unpacks them.
_USUAL_COLUMNS = (*repo.TOTALS, "free_day", "plan", "timezone", "test_clock_id", "frozen_time", "is_team", "existing",
                  "lot_id", "lot_kind", "lot_remaining", "lot_expires_at", "lot_created_at")
if tuple(column.key for column in _usual_read.statement.selected_columns) != _USUAL_COLUMNS:
    raise AssertionError("the usual read's columns are not those _spend_usual unpacks")


class _SqliteValues:
    """The usual read as compiled for a dialect, and its parameters' and results' conversions,
    looked up once."""

    def __init__(self, dialect):
        self.read_sql = _usual_read.sql(dialect)
        names = _usual_read.bind_names(dialect)
        if sorted(names) != ["customer_id", "reference"]:
            raise AssertionError(f"the usual read binds {names}")
        self.reference_first = names[0] == "reference"
        self.read_instant = repo.lots.c.created_at.type.dialect_impl(dialect).result_processor(dialect, None)

    def read_params(self, customer_id: str, reference: str) -> tuple[str, str]:
        return (reference, customer_id) if self.reference_first else (customer_id, reference)


@lru_cache(maxsize=8)
def _sqlite_values(dialect) -> _SqliteValues:
    return _SqliteValues(dialect)


def _spend_usual(ctx, cursor: repo.UnitCursor, customer_id: str, amount: Credits, feature: Feature,
                 reference: str) -> SpendResult | None:
    """The usual spend without a member, in a write transaction the caller opened; None, with
    nothing written, when the general path must answer (see above). A plain spend is written
    directly; anything due first (a hold to look at, an expiry, today's free credits) or a
    feature a plan limits goes through the book, as on the general path."""
    values = _sqlite_values(cursor.dialect)
    cursor.raw.execute(values.read_sql, values.read_params(customer_id, reference))
    rows = cursor.raw.fetchall()
    if not rows:
        return None  # no such customer, or no account yet
    (granted, spent, expired, held, available, account_free_day, plan, timezone, test_clock_id, frozen_time, is_team,
     existing) = rows[0][:12]
    if existing is not None or is_team:
        return None  # a replay or a reused reference; a team (its spends name a member)
    read_instant = values.read_instant
    clock_time = None if frozen_time is None else read_instant(frozen_time)
    now = clock_time or ctx.clock.now()
    lots = [Lot(lot_id, kind, Credits(remaining), None if expires_at is None else read_instant(expires_at),
                read_instant(created_at))
            for *_, lot_id, kind, remaining, expires_at, created_at in rows if lot_id is not None]
    standing = Standing(plan)
    if held or _something_due(ctx.catalog, standing, feature, timezone, account_free_day, lots, now):
        account = repo.AccountRow(customer_id, dict(zip(repo.TOTALS, (granted, spent, expired, held, available))),
                                  account_free_day, timezone, test_clock_id, clock_time, plan)
        book = Book(cursor, account, now, free_day=account_free_day)
        book.load([repo.LotRow(lot.id, lot.kind, lot.remaining, lot.expires_at, lot.created_at) for lot in lots])
        return _spend_from(ctx, book, plan, feature, amount, reference, member_checked=True)
    kinds = lot_kinds_for(ctx.catalog, standing, feature)
    draws = allocate([lot for lot in lots if lot.kind in kinds], amount)
    spend_id, balance = write_plain_spend(cursor, customer_id, amount, feature.code, reference, draws, available, now)
    return SpendResult(spend_id, customer_id, reference, amount, feature.code, tuple(draws), balance, "spent", now)


def _something_due(catalog: Catalog, standing: Standing, feature: Feature, timezone: str,
                   account_free_day: str | None, lots: list[Lot], now: datetime) -> bool:
    """Whether the spend needs the book for more than its draws: a feature a plan limits
    (`admit` counts its jobs), a lot past its expiry (`Book.load` expires it), or today's free
    credits to create first (`draw_for`). A hold, which the book may have to release, is told
    by the account's `held` total."""
    if feature.code in governed(catalog):
        return True
    if any(lot.expires_at is not None and lot.expires_at <= now for lot in lots):
        return True
    return (gets_free_credits(catalog, standing)
            and free_day(now, reset_timezone(catalog, timezone)).key != account_free_day)


def _usual_spend(ctx, customer_id: str, amount: Credits, feature: Feature, reference: str) -> grouped.Work:
    """The usual spend as a unit of the grouped writer: None (rolled back, for the general
    path) for whatever the usual path declines or refuses."""

    def work(cursor) -> SpendResult | None:
        try:
            return _spend_usual(ctx, repo.UnitCursor(ctx.db.engine.dialect, cursor), customer_id, amount, feature,
                                reference)
        except CreditflowError:  # a refusal: the general path raises it again, with its message
            return None

    return work


def _spend_on_sqlite(ctx, customer_id: str, amount: Credits, feature: Feature, reference: str) -> SpendResult | None:
    return grouped.write(ctx.db, _usual_spend(ctx, customer_id, amount, feature, reference))


def take_and_record(book: Book, draws: list[Draw], kind: str, spend_id: str, reference: str, feature: Feature,
                    amount: Credits, *, expires_at: datetime | None = None, queue: str | None = None) -> None:
    """Draw a spend or a hold out of its lots and write it with its row and its event."""
    book.take(draws, kind, reference)
    data = {"spend" if kind == "spend" else "hold": spend_id, "reference": reference, "feature": feature.code,
            "amount": str(amount), "balance": str(book.available)}
    if expires_at is not None:
        data["expires_at"] = format_instant(expires_at)
    book.record("credits.spent" if kind == "spend" else "credits.hold_placed", data)
    book.flush()
    repo.insert_spend(
        book.cursor,
        id=spend_id, customer_id=book.customer_id, kind=kind, reference=reference, feature=feature.code,
        amount=amount, settled=None, status="spent" if kind == "spend" else "held", draws=draws_to_json(draws),
        balance_after=book.available, expires_at=expires_at, created_at=book.now, resolved_at=None, refunded_at=None,
        queue=queue,
    )


# The usual spend on PostgreSQL, in one statement: see SPEND_FUNCTION in migrations/versions/0001_initial.py
# (as changed by 0002 and 0003).
_MAX_DRAWS = 9  # the function names the entries after the spend, 1 to 9; more lots: the general path


@lru_cache(maxsize=256)
def _spend_statement(catalog: Catalog, feature: Feature, *, team: bool = False) -> str:
    """The call of `creditflow_spend` for `feature` (`creditflow_team_spend` for a team's member,
    in 0014), with what `lot_kinds_for` and `gets_free_credits` decide for it under every
    standing written in as constants (one prepared statement per feature, and less to send per
    spend)."""
    kinds = PAID_KINDS if feature.requires_subscription else ALL_KINDS
    free_allowed = not feature.requires_subscription and feature.code in catalog.free.features
    plans = [code for code, plan in catalog.plans.items() if feature.code in plan.features]
    function, last = ("creditflow_team_spend", ", %s::text)") if team else ("creditflow_spend", ") ")
    call = sql.SQL(
        "SELECT outcome, spent_at, balance, draws FROM " + function + "(%s::text, %s::text, {}::text, %s::bigint, "
        "{}::text[], {}::boolean, {}::text[], {}::boolean, {}::boolean, {}::text, %s::timestamptz, %s::text" + last
        # Without a member, a team's spend is refused by the general path: for a team the function
        # is not called at all (an uncorrelated condition is tested once, before the scan).
        + ("" if team else "WHERE NOT EXISTS (SELECT FROM teams WHERE customer_id = %s::text)")
    ).format(*map(sql.Literal, (
        feature.code, sorted(kinds), free_allowed, sorted(plans), bool(catalog.free.daily_credits),
        catalog.policies.free_credits_for_subscribers, catalog.policies.free_reset_timezone,
    )))
    return call.as_string(None)


def _spend_in_database(ctx, cursor: repo.UnitCursor, customer_id: str, amount: Credits, feature: Feature,
                       reference: str, member: str | None = None) -> SpendResult | None:
    """The usual spend, done by `creditflow_spend` (a team member's: `creditflow_team_spend`) in
    one round trip; None (and nothing changed) when the case needs the general path: a replay, a
    refusal, expiries or free credits due, a member over their limit."""
    spend_id = new_id("spd")
    cursor.raw.execute(_spend_statement(ctx.catalog, feature, team=member is not None),
                       (customer_id, reference, amount.milli, ctx.clock.now(), spend_id, member or customer_id))
    row = cursor.raw.fetchone()
    if row is None:  # a team's spend without a member: the general path refuses it
        return None
    outcome, spent_at, balance, draws = row
    if outcome != "spent":
        return None
    # Draws come back as 'lot kind amount,...' (ids and kinds hold neither spaces nor commas):
    # cheaper to read than JSON, and the spend row holds the JSON.
    draws = tuple(Draw(lot, kind, Credits(int(milli))) for lot, kind, milli in
                  (draw.split(" ") for draw in draws.split(",")))
    return SpendResult(spend_id, customer_id, reference, amount, feature.code, draws, Credits(balance), "spent",
                       utc(spent_at))


def draw_for(ctx, book: Book, standing: Standing, feature: Feature, amount: Credits) -> list[Draw]:
    """Which lots pay `amount` for `feature` (shared by spends and holds); creates today's free
    credits first when the customer gets them."""
    kinds = lot_kinds_for(ctx.catalog, standing, feature)
    if gets_free_credits(ctx.catalog, standing):
        day = free_day(book.now, reset_timezone(ctx.catalog, book.account.timezone))
        book.ensure_free_credits(ctx.catalog.free.daily_credits, day)
    return allocate(book.eligible(kinds), amount)


def _replay(row, customer_id: str, amount: Credits, feature: str) -> SpendResult:
    # A spend recorded at 0 (inside an unlimited window) is replayed whatever amount it was asked for.
    if row.kind != "spend" or (row.amount != amount and row.amount) or row.feature != feature:
        what = "a hold" if row.kind != "spend" else f"a spend of {row.amount} on {row.feature}"
        raise Conflict(f"reference {row.reference!r} was already used for {what}", code="reference_reused",
                       param="reference")
    return _result(row, customer_id, replayed=True)


def _result(row, customer_id: str, *, replayed: bool = False) -> SpendResult:
    return SpendResult(row.id, customer_id, row.reference, row.amount, row.feature,
                       tuple(draws_from_json(row.draws)), row.balance_after, row.status, row.created_at,
                       replayed, row.queue)


def get_spend(session: Session, customer_id: str, reference: str) -> SpendResult:
    row = repo.spend_by_reference(repo.UnitCursor.of(session), customer_id, reference)
    if row is None or row.kind != "spend":
        raise NotFound(f"no spend with reference {reference!r}", param="reference")
    return _result(row, customer_id)


def refund_spend(ctx, customer_id: str, *, reference: str) -> RefundResult:
    """Give a spend's credits back to the lots they came from; what belonged to a lot that
    has expired since is recorded as expired. A settled hold is refunded for what it settled.

    Errors: NotFound (customer, reference), Conflict `already_refunded`, Conflict
    `hold_not_settled` (a hold still held, released or expired: nothing was spent)."""
    reference = inputs.reference(reference)
    customer_id = inputs.identifier(customer_id, "customer")
    return run(ctx, lambda cursor: _refund(ctx, cursor, customer_id, reference))


def _refund(ctx, cursor: repo.UnitCursor, customer_id: str, reference: str) -> RefundResult:
    book = Book.lock(ctx, cursor, customer_id)
    row = repo.spend_by_reference(cursor, customer_id, reference)
    if row is None:
        raise NotFound(f"no spend with reference {reference!r}", param="reference")
    if row.refunded_at is not None:
        raise Conflict(f"the spend {reference!r} was already refunded", code="already_refunded",
                       param="reference")
    if row.kind == "transfer":
        raise Conflict("credits sent by a transfer belong to the receiver now: they can't be refunded",
                       code="transfer_not_refundable", param="reference")
    if row.kind == "hold" and row.status != "settled":
        raise Conflict(f"the hold {row.id} is {row.status}: nothing was spent; release it instead",
                       code="hold_not_settled", param="reference")
    draws = draws_from_json(row.draws)
    if row.kind == "hold":
        draws, _ = split_settlement(draws, row.settled)
    book.load()
    book.ensure_lots(d.lot_id for d in draws)
    lost = book.give_back(draws, "refund", reference)
    book.record("credits.spend_refunded", {
        "spend": row.id, "reference": reference, "amount": str(Credits(sum(d.amount.milli for d in draws))),
        "expired": str(Credits(lost)), "balance": str(book.available)})
    book.flush()
    repo.mark_refunded(cursor, row.id, status="refunded" if row.kind == "spend" else row.status, at=book.now)
    give_back_usage(cursor, customer_id, reference, None, now=book.now)
    return RefundResult(customer_id, reference, Credits(sum(d.amount.milli for d in draws)), tuple(draws),
                        Credits(lost), book.available, book.now)
