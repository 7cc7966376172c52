"""Prices as sold: each subscription keeps its price until moved

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 06:45:00

A subscription now keeps the price it was sold at (`price`), the price of a scheduled change
(`scheduled_price`) and a price the operator moved it to from a later renewal (`next_price`,
`next_price_from`). The catalog file is not known here, so existing rows are left NULL, which
means "the catalog's current price": `creditflow serve` and `creditflow worker` fill them in
from the catalog they start with, a renewal fills one in as it charges it, and
`creditflow catalog migrate` moves them like any other.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('next_price', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('next_price_from', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('scheduled_price', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('scheduled_price')
        batch_op.drop_column('next_price_from')
        batch_op.drop_column('next_price')
        batch_op.drop_column('price')
