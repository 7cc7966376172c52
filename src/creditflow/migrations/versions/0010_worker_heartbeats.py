"""Worker heartbeats

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 03:50:00

One row per worker process, updated each time it runs its jobs: `GET /readyz` answers 503 when
no worker ran within the last minute.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'worker_heartbeats',
        sa.Column('worker_id', sa.String(length=100), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('worker_id'),
    )


def downgrade() -> None:
    op.drop_table('worker_heartbeats')
