"""Prices as sold: each subscription keeps its price until moved

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 06:45:00

Columns for grandfathered prices (filled in as the feature lands).
"""
from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
