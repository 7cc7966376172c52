"""API keys as an admin lists them: never the secret, nor its hash."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from creditflow.api.schemas.common import InstantOut, Resource


class ApiKeyRead(Resource):
    object: Literal["api_key"] = "api_key"
    prefix: str = Field(description="The first characters of the secret, to tell keys apart")
    scope: str
    created_at: InstantOut
    revoked_at: InstantOut | None
