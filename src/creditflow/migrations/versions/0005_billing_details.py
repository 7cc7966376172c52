"""Billing details on customers, and on each invoice as it was issued

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 20:40:00

Customers gain an address and a tax id (name, email and country they had). Each invoice keeps
who sold and who bought as they were when it was issued; invoices issued before this have
neither (null).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('tax_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seller', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('bill_to', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('bill_to')
        batch_op.drop_column('seller')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('tax_id')
        batch_op.drop_column('address')
