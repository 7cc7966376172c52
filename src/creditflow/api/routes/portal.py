from __future__ import annotations

from fastapi import APIRouter, Request, status

from creditflow.api.deps import AppSettings, Caller, Ctx
from creditflow.api.errors import errors
from creditflow.api.schemas.portal import PortalSessionCreate, PortalSessionRead
from creditflow.portal.service import PAGE_PATH, create_portal_session

router = APIRouter(tags=["billing page"])


@router.post("/portal_sessions", status_code=status.HTTP_201_CREATED, response_model=PortalSessionRead,
             responses=errors(404, 409, e404="No such customer, or no such active member of its team"))
def create(body: PortalSessionCreate, request: Request, ctx: Ctx, settings: AppSettings, _: Caller):
    """A one-time link (valid 5 minutes) to the customer's Billing and Subscription page."""
    with ctx.db.transaction() as session:
        portal, token = create_portal_session(session, customer_id=body.customer, return_url=body.return_url,
                                              secret_key=settings.secret_key, now=ctx.clock.now(),
                                              member=body.member)
        base = (settings.public_url or str(request.base_url)).rstrip("/")
        return PortalSessionRead(id=portal.id, customer=portal.customer_id, url=f"{base}{PAGE_PATH}{token}",
                                 member=portal.member_id, expires_at=portal.expires_at)
