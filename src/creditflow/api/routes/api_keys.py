"""API keys, managed with an `admin` key: list them, revoke one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from creditflow.api.audit import as_support
from creditflow.api.deps import Caller, Ctx, Limit, StartingAfter
from creditflow.api.errors import errors
from creditflow.api.schemas.api_keys import ApiKeyRead
from creditflow.api.schemas.common import ListOf, page
from creditflow.auth.service import ADMIN, Principal, list_api_keys, revoke_api_key

router = APIRouter(tags=["api_keys"])


async def get_admin(principal: Caller) -> Principal:
    principal.require(ADMIN)
    return principal


Admin = Annotated[Principal, Depends(get_admin)]


@router.get("/api_keys", response_model=ListOf[ApiKeyRead],
            responses=errors(403, 404, e403="Not an `admin` key (`forbidden`)",
                             e404="`starting_after` names no key"))
def list_keys(ctx: Ctx, _: Admin, limit: Limit = 20, starting_after: StartingAfter = None):
    with ctx.db.transaction(readonly=True) as session:
        rows, has_more = list_api_keys(session, limit=limit, starting_after=starting_after)
        return page(rows, has_more, ApiKeyRead.of)


@router.post("/api_keys/{key_id}/revoke", response_model=ApiKeyRead,
             responses=errors(403, 404, 409, e403="Not an `admin` key (`forbidden`)",
                              e409="Already revoked (`already_revoked`)"))
def revoke_key(key_id: str, ctx: Ctx, caller: Admin):
    """The key stops working in every API process within a second. Audited, as the admin key."""

    def revoke():
        with ctx.db.transaction() as session:
            return ApiKeyRead.of(revoke_api_key(session, key_id, now=ctx.clock.now()))

    return as_support(ctx, caller, revoke, action="api_key.revoke", summary=f"Revoke API key {key_id}",
                      done=f"Revoked API key {key_id}", reason=None, customer_id=None, details={"key": key_id})
