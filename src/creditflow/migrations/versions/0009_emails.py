"""Emails to customers, queued from events

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 03:40:00

`emails` holds each email queued for a customer until it is sent (or given up). Events gain
`notified`, set once the worker has queued the emails an event calls for. Events recorded before
this are marked notified: setting email up never sends a backlog of old news.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'emails',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('dedupe_key', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('to_address', sa.String(length=320), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('message_id', sa.String(length=200), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('dedupe_key'),
    )
    op.create_index('ix_emails_customer_id', 'emails', ['customer_id'])
    op.create_index('ix_emails_due', 'emails', ['next_attempt_at'],
                    sqlite_where=sa.text("status IN ('pending', 'sending')"),
                    postgresql_where=sa.text("status IN ('pending', 'sending')"))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified', sa.Boolean(), nullable=False, server_default=sa.false()))
    events = sa.table('events', sa.column('notified', sa.Boolean()))
    op.execute(events.update().values(notified=True))
    op.create_index('ix_events_unnotified', 'events', ['seq'], sqlite_where=sa.text('notified = 0'),
                    postgresql_where=sa.text('notified = false'))


def downgrade() -> None:
    op.drop_index('ix_events_unnotified', table_name='events')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('notified')
    op.drop_index('ix_emails_due', table_name='emails')
    op.drop_index('ix_emails_customer_id', table_name='emails')
    op.drop_table('emails')
