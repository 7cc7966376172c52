from __future__ import annotations

from fastapi import APIRouter

from creditflow.api.deps import Caller, Ctx
from creditflow.api.errors import errors
from creditflow.api.schemas.catalog import CatalogRead

router = APIRouter(tags=["catalog"])


@router.get("/catalog", response_model=CatalogRead, responses=errors())
def read(ctx: Ctx, _: Caller):
    return CatalogRead.of(ctx.catalog)
