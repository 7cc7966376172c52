"""Portal sessions: links to a customer's Billing and Subscription page."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from creditflow.api.schemas.common import Id, InstantOut, Resource, Request


class PortalSessionCreate(Request):
    customer: Id
    return_url: str | None = Field(default=None, max_length=2048)
    member: Id | None = Field(default=None, description="A team member's id: their page shows the team's pool and "
                                                        "their own usage and limit, with no billing actions")


class PortalSessionRead(Resource):
    object: Literal["portal_session"] = "portal_session"
    customer: str
    url: str
    member: str | None = None
    expires_at: InstantOut
