"""Ledger checkpoints; indexes for long histories; a customer's language

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 07:05:00

What `creditflow ledger check` last verified: the sums of every ledger entry up to a sequence
number, per customer and per lot, so that the next check adds only the entries written since.

The indexes on a customer's ledger entries and events become (customer_id, seq), so that a page
of a customer's entries or events, or their entries after a checkpoint, doesn't read or sort
the rest of their history. On a large PostgreSQL database, building them takes a while and
holds back writes to those tables meanwhile: run this upgrade in a quiet hour.

Customers get a `language`, which picks the templates of their emails.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | Sequence[str] | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _totals(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=35), nullable=True))
    op.create_table(
        'ledger_checkpoints',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('through_seq', sa.BigInteger(), nullable=False),
        sa.Column('entries', sa.BigInteger(), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_checkpoints')),
    )
    op.create_table(
        'ledger_checkpoint_accounts',
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        *_totals('granted', 'spent', 'expired', 'held', 'available'),
        sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_ledger_checkpoint_accounts')),
    )
    op.create_table(
        'ledger_checkpoint_lots',
        sa.Column('lot_id', sa.String(length=40), nullable=False),
        *_totals('granted', 'remaining'),
        sa.PrimaryKeyConstraint('lot_id', name=op.f('pk_ledger_checkpoint_lots')),
    )
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_credit_entries_customer_seq', ['customer_id', 'seq'], unique=False)
        batch_op.drop_index(batch_op.f('ix_credit_entries_customer_id'))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_customer_seq', ['customer_id', 'seq'], unique=False)
        batch_op.drop_index(batch_op.f('ix_events_customer_id'))


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_customer_id'), ['customer_id'], unique=False)
        batch_op.drop_index('ix_events_customer_seq')
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_entries_customer_id'), ['customer_id'], unique=False)
        batch_op.drop_index('ix_credit_entries_customer_seq')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('language')
    op.drop_table('ledger_checkpoint_lots')
    op.drop_table('ledger_checkpoint_accounts')
    op.drop_table('ledger_checkpoints')
