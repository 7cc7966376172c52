"""Priced generations: usage counters for limits, transfers

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 06:45:00

Daily fast-job counters (credit_usage) and credit transfers (credit_transfers); a spend may be
of 0 credits (inside an unlimited window); lots of kind `earned` (received by a transfer) and
spends of kind `transfer` (sent). SQLite changes a CHECK constraint by rebuilding the table
(batch mode). A spend or hold of a limited feature keeps its queue (fast or relaxed) for replays.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LOT_KINDS_OLD = "kind IN ('free', 'subscription', 'top_up', 'promo')"
_LOT_KINDS_NEW = "kind IN ('free', 'subscription', 'top_up', 'promo', 'earned')"
_SPEND_KINDS_OLD = "kind IN ('spend', 'hold')"
_SPEND_KINDS_NEW = "kind IN ('spend', 'hold', 'transfer')"


def upgrade() -> None:
    op.create_table('credit_usage',
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('feature', sa.String(length=64), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('fast_used', sa.Integer(), nullable=False),
    sa.CheckConstraint('fast_used >= 0', name=op.f('ck_credit_usage_fast_used_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_credit_usage_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', 'feature', 'day', name=op.f('pk_credit_usage'))
    )
    op.create_table('credit_transfers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.Column('from_customer_id', sa.String(length=40), nullable=False),
    sa.Column('to_customer_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('feature', sa.String(length=64), nullable=False),
    sa.Column('spend_id', sa.String(length=40), nullable=False),
    sa.Column('lot_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name=op.f('ck_credit_transfers_amount_positive')),
    sa.ForeignKeyConstraint(['from_customer_id'], ['customers.id'],
                            name=op.f('fk_credit_transfers_from_customer_id_customers')),
    sa.ForeignKeyConstraint(['to_customer_id'], ['customers.id'],
                            name=op.f('fk_credit_transfers_to_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_transfers')),
    sa.UniqueConstraint('reference', name=op.f('uq_credit_transfers_reference'))
    )
    with op.batch_alter_table('credit_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_transfers_from_customer_id'), ['from_customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_transfers_to_customer_id'), ['to_customer_id'], unique=False)
    _checks('credit_spends', drop=('amount_positive', 'kind'),
            add=(('amount_not_negative', 'amount >= 0'), ('kind', _SPEND_KINDS_NEW)))
    _checks('credit_lots', drop=('kind',), add=(('kind', _LOT_KINDS_NEW),))
    with op.batch_alter_table('credit_spends', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('credit_spends', schema=None) as batch_op:
        batch_op.drop_column('queue')
    _checks('credit_lots', drop=('kind',), add=(('kind', _LOT_KINDS_OLD),))
    _checks('credit_spends', drop=('amount_not_negative', 'kind'),
            add=(('amount_positive', 'amount > 0'), ('kind', _SPEND_KINDS_OLD)))
    with op.batch_alter_table('credit_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_transfers_to_customer_id'))
        batch_op.drop_index(batch_op.f('ix_credit_transfers_from_customer_id'))
    op.drop_table('credit_transfers')
    op.drop_table('credit_usage')


def _checks(table: str, *, drop: tuple[str, ...], add: tuple[tuple[str, str], ...]) -> None:
    """Replace CHECK constraints (named as the models name them: ck_<table>_<name>)."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name in drop:
            batch_op.drop_constraint(op.f(f'ck_{table}_{name}'), type_='check')
        for name, condition in add:
            batch_op.create_check_constraint(op.f(f'ck_{table}_{name}'), sa.text(condition))
