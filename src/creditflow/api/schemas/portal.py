"""Portal sessions: links to a customer's Billing and Subscription page."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from creditflow.api.schemas.common import Id, InstantOut, Read, Request


class PortalSessionCreate(Request):
    customer: Id
    return_url: str | None = Field(default=None, max_length=2048)


class PortalSessionRead(Read):
    id: str
    object: Literal["portal_session"] = "portal_session"
    customer: str
    url: str
    expires_at: InstantOut
