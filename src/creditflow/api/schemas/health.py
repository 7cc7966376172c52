"""The answer of the health check."""

from __future__ import annotations

from typing import Literal

from creditflow.api.schemas.common import Read


class Health(Read):
    status: Literal["ok"] = "ok"
