"""Worker heartbeats

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 03:50:00

One row per worker process, updated each time it runs its jobs: `GET /readyz` answers 503 when
no worker ran within the last minute.
"""
from alembic import op

from creditflow.migrations.schema import create_table, string, timestamp

revision = '0010'
down_revision = '0009'


def upgrade() -> None:
    create_table(
        'worker_heartbeats',
        string('worker_id', 100),
        timestamp('last_seen_at'),
        primary_key='worker_id',
    )


def downgrade() -> None:
    op.drop_table('worker_heartbeats')
