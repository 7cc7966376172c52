"""Tax and discount on invoices

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 03:05:00

An invoice gains `discount` (the amount taken off by a coupon, a positive number; its line is
a negative `discount` line), and a line gains the tax `rate` (a percent, as a decimal string)
and the `country` (or country-region) it was taxed for; both are null on other lines. Invoices
issued before this have no discount and no tax lines.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_column('country')
        batch_op.drop_column('rate')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('discount')
