"""Priced generations: usage counters for limits, transfers

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 06:45:00

Daily fast-job counters (credit_usage) and credit transfers (credit_transfers); a spend may be
of 0 credits (inside an unlimited window); lots of kind `earned` (received by a transfer) and
spends of kind `transfer` (sent). SQLite changes a CHECK constraint by rebuilding the table
(batch mode). A spend or hold of a limited feature keeps its queue (fast or relaxed) for replays.
"""
import sqlalchemy as sa
from alembic import op

from creditflow.migrations.schema import add_columns, create_table, drop_columns
from creditflow.migrations.schema import bigint, ident, integer, string, timestamp

revision = '0012'
down_revision = '0011'

_LOT_KINDS_OLD = "kind IN ('free', 'subscription', 'top_up', 'promo')"
_LOT_KINDS_NEW = "kind IN ('free', 'subscription', 'top_up', 'promo', 'earned')"
_SPEND_KINDS_OLD = "kind IN ('spend', 'hold')"
_SPEND_KINDS_NEW = "kind IN ('spend', 'hold', 'transfer')"


def upgrade() -> None:
    create_table(
        'credit_usage',
        ident('customer_id'),
        string('feature', 64),
        string('day', 10),
        integer('fast_used'),
        primary_key=('customer_id', 'feature', 'day'),
        checks={'fast_used_not_negative': 'fast_used >= 0'},
        foreign_keys={'customer_id': 'customers'},
    )
    create_table(
        'credit_transfers',
        ident('id'),
        string('reference', 255),
        ident('from_customer_id'),
        ident('to_customer_id'),
        bigint('amount'),
        string('feature', 64),
        ident('spend_id'),
        ident('lot_id'),
        timestamp('created_at'),
        checks={'amount_positive': 'amount > 0'},
        foreign_keys={'from_customer_id': 'customers', 'to_customer_id': 'customers'},
        unique=['reference'],
        indexes=['from_customer_id', 'to_customer_id'],
    )
    _checks('credit_spends', drop=('amount_positive', 'kind'),
            add=(('amount_not_negative', 'amount >= 0'), ('kind', _SPEND_KINDS_NEW)))
    _checks('credit_lots', drop=('kind',), add=(('kind', _LOT_KINDS_NEW),))
    add_columns('credit_spends', string('queue', 8, null=True))


def downgrade() -> None:
    drop_columns('credit_spends', 'queue')
    _checks('credit_lots', drop=('kind',), add=(('kind', _LOT_KINDS_OLD),))
    _checks('credit_spends', drop=('amount_not_negative', 'kind'),
            add=(('amount_positive', 'amount > 0'), ('kind', _SPEND_KINDS_OLD)))
    op.drop_table('credit_transfers')
    op.drop_table('credit_usage')


def _checks(table: str, *, drop: tuple[str, ...], add: tuple[tuple[str, str], ...]) -> None:
    """Replace CHECK constraints (named as the models name them: ck_<table>_<name>)."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name in drop:
            batch_op.drop_constraint(op.f(f'ck_{table}_{name}'), type_='check')
        for name, condition in add:
            batch_op.create_check_constraint(op.f(f'ck_{table}_{name}'), sa.text(condition))
