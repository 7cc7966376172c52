"""Priced generations: usage counters for limits, transfers

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 06:45:00

Tables for priced generations (filled in as the feature lands).
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
