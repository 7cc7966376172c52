"""Emails to customers, queued from events

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 03:40:00

`emails` holds each email queued for a customer until it is sent (or given up). Events gain
`notified`, set once the worker has queued the emails an event calls for. Events recorded before
this are marked notified: setting email up never sends a backlog of old news.
"""
import sqlalchemy as sa
from alembic import op

from creditflow.migrations.schema import add_columns, create_table, drop_columns, partial_index
from creditflow.migrations.schema import boolean, ident, integer, json, string, timestamp

revision = '0009'
down_revision = '0008'


def upgrade() -> None:
    create_table(
        'emails',
        ident('id'),
        string('dedupe_key', 200),
        string('kind', 32),
        ident('customer_id'),
        string('to_address', 320),
        json('data'),
        string('status', 16),
        integer('attempts'),
        timestamp('next_attempt_at'),
        string('message_id', 200),
        string('subject', 300, null=True),
        string('last_error', 500, null=True),
        timestamp('created_at'),
        timestamp('sent_at', null=True),
        unique=['dedupe_key'],
        indexes=['customer_id'],
    )
    partial_index('ix_emails_due', 'emails', ['next_attempt_at'], "status IN ('pending', 'sending')")
    add_columns('events', boolean('notified', default=sa.false()))
    events = sa.table('events', sa.column('notified', sa.Boolean()))
    op.execute(events.update().values(notified=True))
    partial_index('ix_events_unnotified', 'events', ['seq'], 'notified = false', sqlite_where='notified = 0')


def downgrade() -> None:
    op.drop_index('ix_events_unnotified', table_name='events')
    drop_columns('events', 'notified')
    op.drop_table('emails')
