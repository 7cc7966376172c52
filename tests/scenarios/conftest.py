"""Scenario fixtures; the harness itself is in scenario_kit.py."""

from __future__ import annotations

import pytest
from scenario_kit import World


@pytest.fixture
def world(db) -> World:
    return World(db)
