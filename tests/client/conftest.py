"""The client against a real creditflow server (uvicorn on a free local port, SQLite)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from api_kit import SERVER_KEY, SUPPORT_KEY, LiveServer, make_api  # noqa: E402


@pytest.fixture
def server(sqlite_db):
    api = make_api(sqlite_db)
    with LiveServer(api.client.app) as live:
        live.ctx = api.ctx
        yield live


@pytest.fixture
def keys() -> tuple[str, str]:
    return SERVER_KEY, SUPPORT_KEY
