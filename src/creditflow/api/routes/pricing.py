"""Priced generations: what a job costs (estimate), what each feature allows (entitlements)."""

from __future__ import annotations

from fastapi import APIRouter

from creditflow.api.deps import Caller, Ctx
from creditflow.api.errors import errors
from creditflow.api.schemas.pricing import EntitlementsRead, EstimateCreate, EstimateRead
from creditflow.generation.service import entitlements, estimate_job

router = APIRouter(tags=["pricing"])


@router.post("/customers/{customer_id}/credits/estimate", response_model=EstimateRead,
             responses=errors(404, 422, e404="No such customer",
                              e422="`invalid_request`: an unknown feature (`param: feature`), a feature without a "
                                   "price (`reason: feature_not_priced`), an option it doesn't have or a value it "
                                   "doesn't take (`param` names it: `options.resolution`)"))
def estimate(customer_id: str, body: EstimateCreate, ctx: Ctx, _: Caller):
    """What one job costs this customer now, line by line: the catalog's price of its options, or
    "0" inside an unlimited window. Nothing is written."""
    return EstimateRead.of(estimate_job(ctx, customer_id, feature=body.feature, options=body.options))


@router.get("/customers/{customer_id}/entitlements", response_model=EntitlementsRead, responses=errors(404))
def customer_entitlements(customer_id: str, ctx: Ctx, _: Caller):
    """What each feature allows the customer now: whether the plan includes it, its unlimited
    window, its limits and how much of them is used."""
    return EntitlementsRead.of(customer_id, ctx.db.read(lambda session: entitlements(ctx, session, customer_id)))
