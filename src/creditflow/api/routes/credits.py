from __future__ import annotations

from fastapi import APIRouter, status

from creditflow.api.audit import as_support, credits_text
from creditflow.api.deps import Caller, Ctx, Limit, StartingAfter, Support
from creditflow.api.errors import PURCHASE_402, errors
from creditflow.api.schemas.common import ListOf, page
from creditflow.api.schemas.credits import (
    BalanceRead,
    EntryRead,
    GrantCreate,
    GrantedLotRead,
    HoldCreate,
    HoldRead,
    HoldSettle,
    SpendCreate,
    SpendRead,
    SpendRefundCreate,
    SpendRefundRead,
    TopUpCreate,
    TopUpRead,
)
from creditflow.credits.balance import get_balance, list_entries
from creditflow.credits.holds import get_hold, release_hold, settle_hold
from creditflow.credits.promo import grant_promo_credits
from creditflow.credits.spend import refund_spend
from creditflow.generation.service import hold_job, spend_job
from creditflow.kit.clock import format_instant
from creditflow.purchase.top_up import purchase_top_up
from creditflow.team.service import members_by_reference

router = APIRouter(tags=["credits"])

# A spend or a hold may name `options` instead of `amount` (charged exactly their estimate); a
# plan's limits on the feature answer 429.
LIMIT_ERRORS = {"e429": "`concurrency_limit` or `daily_limit` (a plan's limit on the feature; `resets_at` beside "
                        "`error` says when it frees up), or `rate_limited`"}


@router.get("/customers/{customer_id}/credits", response_model=BalanceRead, responses=errors(404))
def balance(customer_id: str, ctx: Ctx, _: Caller):
    """The balance, today's free credits included."""
    return BalanceRead.of(ctx.db.read(lambda session: get_balance(ctx, session, customer_id)))


@router.post("/customers/{customer_id}/credits/spend", response_model=SpendRead,
             responses=errors(402, 403, 404, 409, 429, e402="`insufficient_credits` or `member_limit_reached` (the "
                                                        "member's monthly limit): nothing spent",
                              e403="`subscription_required`, `feature_not_in_plan` or `member_inactive`",
                              e409="`reference_reused`: same reference, different amount or feature",
                              **LIMIT_ERRORS))
def spend(customer_id: str, body: SpendCreate, ctx: Ctx, _: Caller):
    """Spend credits on a feature; a repeat with the same reference returns the first result."""
    return SpendRead.of(spend_job(ctx, customer_id, amount=body.amount, options=body.options, feature=body.feature,
                                  reference=body.reference, member=body.member))


@router.post("/customers/{customer_id}/credits/refund", response_model=SpendRefundRead,
             responses=errors(404, 409, e404="No such customer, or no spend with that reference",
                              e409="`already_refunded`, `hold_not_settled`"))
def refund(customer_id: str, body: SpendRefundCreate, ctx: Ctx, _: Caller):
    """Give a spend's credits back to the lots they came from."""
    return SpendRefundRead.of(refund_spend(ctx, customer_id, reference=body.reference))


@router.post("/customers/{customer_id}/credits/holds", status_code=status.HTTP_201_CREATED,
             response_model=HoldRead, responses=errors(402, 403, 404, 409, 429, **LIMIT_ERRORS))
def hold(customer_id: str, body: HoldCreate, ctx: Ctx, _: Caller):
    return HoldRead.of(hold_job(ctx, customer_id, amount=body.amount, options=body.options, feature=body.feature,
                                reference=body.reference, ttl_seconds=body.ttl_seconds, member=body.member))


@router.get("/holds/{hold_id}", response_model=HoldRead, responses=errors(404))
def read_hold(hold_id: str, ctx: Ctx, _: Caller):
    return HoldRead.of(ctx.db.read(lambda session: get_hold(ctx, session, hold_id)))


@router.post("/holds/{hold_id}/settle", response_model=HoldRead,
             responses=errors(404, 409, e409="`hold_expired`, `hold_released`, `hold_settled`"))
def settle(hold_id: str, body: HoldSettle, ctx: Ctx, _: Caller):
    """Spend at most the held amount; the rest goes back."""
    return HoldRead.of(settle_hold(ctx, hold_id, amount=body.amount))


@router.post("/holds/{hold_id}/release", response_model=HoldRead,
             responses=errors(404, 409, e409="`hold_settled`"))
def release(hold_id: str, ctx: Ctx, _: Caller):
    return HoldRead.of(release_hold(ctx, hold_id))


@router.post("/customers/{customer_id}/credits/grants", status_code=status.HTTP_201_CREATED,
             response_model=GrantedLotRead, responses=errors(403, 404, 409, e403="`forbidden`: needs a support key"))
def grant(customer_id: str, body: GrantCreate, ctx: Ctx, caller: Support):
    """Support: grant promo credits, with a reason and an optional expiry."""
    what = f"{credits_text(body.amount)} promotional credits" + (f", expiring at {format_instant(body.expires_at)}"
                                                     if body.expires_at else ", never expiring")
    return GrantedLotRead.of(as_support(
        ctx, caller, lambda: grant_promo_credits(ctx, customer_id, amount=body.amount, reason=body.reason,
                                                 expires_at=body.expires_at, kind=body.kind, actor=caller.key_id,
                                                 reference=body.reference),
        action="credits.promo_grant", summary=f"Grant {what}", done=f"Granted {what}", reason=body.reason,
        customer_id=customer_id, details={"amount": str(body.amount), "reference": body.reference},
        describe=lambda lot: f"lot {lot.id}" + (" (a retry: granted once)" if lot.replayed else "")))


@router.get("/customers/{customer_id}/credits/ledger", response_model=ListOf[EntryRead], responses=errors(404))
def ledger(customer_id: str, ctx: Ctx, _: Caller, limit: Limit = 20, starting_after: StartingAfter = None):
    """Ledger entries, oldest first."""
    def read(session):
        entries = list_entries(session, customer_id, limit=limit, starting_after=starting_after)
        return entries, members_by_reference(session, customer_id, [e.reference for e in entries.data if e.reference])

    result, members = ctx.db.read(read)
    return page(list(result.data), result.has_more, lambda entry: EntryRead.of(entry, members))


@router.post("/customers/{customer_id}/top_ups", status_code=status.HTTP_201_CREATED, response_model=TopUpRead,
             responses=errors(402, 404, 409, e402=PURCHASE_402, e404="No such customer, or `coupon_not_found`",
                              e409="`subscription_required` (Free or past_due), `coupon_not_applicable`, "
                                   "`coupon_expired`, `coupon_exhausted`"))
def top_up(customer_id: str, body: TopUpCreate, ctx: Ctx, _: Caller):
    """Buy a bundle of credits: charged first, granted only if the payment succeeded."""
    return TopUpRead.of(purchase_top_up(ctx, customer_id, bundle=body.bundle, reference=body.reference,
                                        coupon=body.coupon))
