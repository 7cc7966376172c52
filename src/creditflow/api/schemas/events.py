"""Events and webhook endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from creditflow.api.schemas.common import Id, InstantOut, Resource, Request


class EventRead(Resource):
    object: Literal["event"] = "event"
    type: str
    customer: str | None
    created_at: InstantOut
    data: dict[str, Any]


class WebhookEndpointCreate(Request):
    url: str = Field(min_length=1, max_length=2048)
    events: list[Id] | None = Field(default=None, max_length=100,
                                    description="Event types to receive; all when left out")


class WebhookEndpointRead(Resource):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str] | None
    created_at: InstantOut


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str = Field(description="Signs deliveries (HMAC-SHA256); shown only here")
