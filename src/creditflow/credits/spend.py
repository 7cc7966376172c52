"""Spending credits and refunding a spend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from psycopg import sql
from sqlalchemy.orm import Session

from creditflow.catalog.models import Catalog, Feature
from creditflow.credits import inputs
from creditflow.credits import repository as repo
from creditflow.credits.access import (ALL_KINDS, PAID_KINDS, Standing, free_day, gets_free_credits, lot_kinds_for,
                                       reset_timezone)
from creditflow.credits.book import Book, run, run_statement
from creditflow.credits.ledger import Draw, allocate, draws_from_json, draws_to_json, split_settlement
from creditflow.credits.limits import admit, governed
from creditflow.kit import metrics
from creditflow.kit.clock import format_instant, utc
from creditflow.kit.credits import Credits
from creditflow.kit.errors import Conflict, NotFound
from creditflow.kit.ids import new_id
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


def _spend_credits(ctx, customer_id: str, amount, feature: str, reference: str,
                   member: str | None = None, free_until: datetime | None = None) -> SpendResult:
    amount = inputs.positive_amount(amount)
    feature_def = ctx.catalog.feature(feature)
    reference = inputs.reference(reference)
    customer_id = inputs.identifier(customer_id, "customer")
    # A feature with limits or windows takes the general path.
    if ctx.db.is_postgres and free_until is None and feature_def.code not in governed(ctx.catalog):
        done = run_statement(ctx, lambda cursor: _spend_in_database(ctx, cursor, customer_id, amount, feature_def,
                                                                    reference, member))
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
    admitted = admit(ctx, book, plan, feature, amount, kind="spend", reference=reference, free_until=free_until)
    amount = admitted.amount  # 0 inside an unlimited window
    draws = draw_for(ctx, book, Standing(plan), feature, amount) if amount else []
    spend_id = new_id("spd")
    charge_member(cursor, customer_id, member, amount, spend_id=spend_id, reference=reference, now=book.now)
    take_and_record(book, draws, "spend", spend_id, reference, feature, amount, queue=admitted.queue)
    return SpendResult(spend_id, customer_id, reference, amount, feature.code, tuple(draws), book.available,
                       "spent", book.now, queue=admitted.queue)


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
