from __future__ import annotations

from fastapi import APIRouter, Response, status

from creditflow.api.deps import AppSettings, Caller, Ctx, Limit, StartingAfter
from creditflow.api.errors import errors
from creditflow.api.schemas.common import ListOf, page
from creditflow.api.schemas.events import EventRead, WebhookEndpointCreate, WebhookEndpointCreated, WebhookEndpointRead
from creditflow.events.service import (
    create_webhook_endpoint,
    delete_webhook_endpoint,
    event_payload,
    list_events,
    list_webhook_endpoints,
)

router = APIRouter(tags=["events"])


@router.get("/events", response_model=ListOf[EventRead], responses=errors(404, e404="`starting_after` names no event"))
def list_(ctx: Ctx, _: Caller, customer: str | None = None, type: str | None = None, limit: Limit = 20,
          starting_after: StartingAfter = None):
    with ctx.db.transaction(readonly=True) as session:
        rows, has_more = list_events(session, customer=customer, type=type, limit=limit,
                                     starting_after=starting_after)
        return page(rows, has_more, event_payload)


@router.post("/webhook_endpoints", status_code=status.HTTP_201_CREATED, response_model=WebhookEndpointCreated,
             responses=errors(409))
def create_endpoint(body: WebhookEndpointCreate, ctx: Ctx, settings: AppSettings, _: Caller):
    with ctx.db.transaction() as session:
        endpoint = create_webhook_endpoint(session, url=body.url, events=body.events, now=ctx.clock.now(),
                                           denied=settings.webhook_deny)
        return WebhookEndpointCreated.of(endpoint)


@router.get("/webhook_endpoints", response_model=ListOf[WebhookEndpointRead], responses=errors())
def list_endpoints(ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        rows = list_webhook_endpoints(session)
        return page(rows, False, WebhookEndpointRead.of)


@router.delete("/webhook_endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, responses=errors(404, 409))
def delete_endpoint(endpoint_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction() as session:
        delete_webhook_endpoint(session, endpoint_id, now=ctx.clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
