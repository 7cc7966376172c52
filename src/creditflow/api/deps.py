"""FastAPI dependencies: the context, the settings, the caller's API key, list paging.

They are `async def` because they only read what the app or the gate already holds: FastAPI runs
a plain `def` dependency in the thread pool, a hop that costs more than the dependency itself
(each one is about as expensive as a whole bare request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from creditflow.api.settings import Settings
from creditflow.auth.service import Principal
from creditflow.context import Context
from creditflow.kit.errors import CreditflowError


class Unauthorized(CreditflowError):
    category = "unauthorized"
    default_code = "unauthorized"


async def get_ctx(request: Request) -> Context:
    return request.app.state.ctx


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_principal(request: Request) -> Principal:
    # The gate checked the key before the route; the OpenAPI document declares the scheme.
    principal = request.scope.get("state", {}).get("principal")
    if principal is None:
        raise Unauthorized("missing or wrong API key")
    return principal


async def get_support(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    principal.require("support")
    return principal


Ctx = Annotated[Context, Depends(get_ctx)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Caller = Annotated[Principal, Depends(get_principal)]
Support = Annotated[Principal, Depends(get_support)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (default 20, at most 100)")]
StartingAfter = Annotated[str | None, Query(max_length=100, description="Continue after this id")]
