"""Priced generations: what a job costs (estimate), what each feature allows (entitlements),
credits moved between customers (transfers)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from creditflow.api.deps import Caller, Ctx
from creditflow.api.errors import errors
from creditflow.api.schemas.pricing import (EntitlementsRead, EstimateCreate, EstimateRead, TransferCreate,
                                            TransferRead)
from creditflow.credits.transfers import transfer_credits
from creditflow.generation.service import entitlements, estimate_job

router = APIRouter(tags=["pricing"])


@router.post("/customers/{customer_id}/credits/estimate", response_model=EstimateRead,
             responses=errors(404, 422, e404="No such customer, or (`param: member`) no such member in this team",
                              e422="`invalid_request`: an unknown feature (`param: feature`), a feature without a "
                                   "price (`reason: feature_not_priced`), an option it doesn't have or a value it "
                                   "doesn't take (`param` names it: `options.resolution`); on a team "
                                   "`member_required`, elsewhere `not_a_team`"))
def estimate(customer_id: str, body: EstimateCreate, ctx: Ctx, _: Caller):
    """What one job costs this customer now, line by line: the catalog's price of its options, or
    "0" inside an unlimited window. Nothing is written."""
    return EstimateRead.of(estimate_job(ctx, customer_id, feature=body.feature, options=body.options,
                                        member=body.member))


@router.get("/customers/{customer_id}/entitlements", response_model=EntitlementsRead, responses=errors(404))
def customer_entitlements(customer_id: str, ctx: Ctx, _: Caller):
    """What each feature allows the customer now: whether the plan includes it, its unlimited
    window, its limits and how much of them is used."""
    return EntitlementsRead.of(customer_id, ctx.db.read(lambda session: entitlements(ctx, session, customer_id)))


@router.post("/credits/transfers", status_code=status.HTTP_201_CREATED, response_model=TransferRead,
             response_model_by_alias=True,
             responses={200: {"model": TransferRead, "description": "A replay of the same transfer: the first one"},
                        **errors(402, 403, 404, 409, e402="`insufficient_credits`: the sender is short, nothing moved",
                                 e403="`subscription_required` or `feature_not_in_plan` (the sender's plan)",
                                 e404="No such customer (`param`: `from` or `to`)",
                                 e409="`reference_reused`: the reference was used for something else")})
def transfer(body: TransferCreate, response: Response, ctx: Ctx, _: Caller):
    """Move credits from one customer to another, atomically and once per reference: drawn from the
    sender like a spend of `feature`, granted to the receiver as a lot of kind `earned` that never
    expires."""
    result = transfer_credits(ctx, sender=body.sender, receiver=body.receiver, amount=body.amount,
                              feature=body.feature, reference=body.reference)
    if result.replayed:
        response.status_code = status.HTTP_200_OK
    return TransferRead.of(result)
