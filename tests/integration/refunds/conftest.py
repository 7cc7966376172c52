"""Fixtures for the refund tests, on SQLite and PostgreSQL; the harness is in refund_kit.py."""

from __future__ import annotations

import pytest
from refund_kit import Story


@pytest.fixture
def story(db):
    return lambda start, payment_method="pm_card_ok": Story(db, start, payment_method)
