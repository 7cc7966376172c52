"""Fixtures: `api` runs on SQLite; `any_api` on SQLite and on PostgreSQL (the important
flows); `pg_api` on PostgreSQL only. Helpers are in api_kit.py."""

from __future__ import annotations

import pytest

from api_kit import Api, make_api


@pytest.fixture
def api(sqlite_db) -> Api:
    return make_api(sqlite_db)


@pytest.fixture
def any_api(db) -> Api:
    return make_api(db)


@pytest.fixture
def pg_api(pg_db) -> Api:
    return make_api(pg_db)
