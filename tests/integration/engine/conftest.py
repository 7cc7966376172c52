"""Engine integration fixtures; the harness is in engine_kit.py."""

from __future__ import annotations

import pytest
from engine_kit import Engine, utc

START = utc(2026, 3, 10, 10)


@pytest.fixture
def engine(db) -> Engine:
    """Real-time customers on a FixedClock at 2026-03-10 10:00 UTC; both backends."""
    return Engine(db, START)
