from __future__ import annotations

import pytest

from .credit_kit import make_ctx


@pytest.fixture
def ctx(db):
    """The real engine on each backend, the sample catalog, the sandbox gateway, a FixedClock."""
    return make_ctx(db)


@pytest.fixture
def sqlite_ctx(sqlite_db):
    return make_ctx(sqlite_db)
