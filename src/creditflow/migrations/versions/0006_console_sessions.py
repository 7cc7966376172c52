"""Console sessions kept on the server, so that signing out ends them

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 22:40:00

A console session was a signed cookie only: signing out cleared the browser's copy, but a copy
of the cookie kept working until it expired. Each sign-in now has a row (the SHA-256 of a random
token the cookie carries); signing out, disabling the user or changing their password deletes
it. Sessions signed in before this have no row: everyone signs in to the console again.
"""
from alembic import op

from creditflow.migrations.schema import create_table, ident, string, timestamp

revision = '0006'
down_revision = '0005'


def upgrade() -> None:
    create_table(
        'console_sessions',
        string('token_hash', 64),
        ident('user_id'),
        timestamp('created_at'),
        timestamp('expires_at'),
        primary_key='token_hash',
        indexes=['user_id'],
    )


def downgrade() -> None:
    op.drop_table('console_sessions')
