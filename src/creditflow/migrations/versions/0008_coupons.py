"""Coupons, their redemptions, and the discount a subscription carries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 03:35:11

A coupon takes a percent (in hundredths) or an amount off, once, for a number of periods or
forever, limited to plans, terms or bundles; its code is unique whatever its case (`code_key`).
A redemption is one use by a customer (what it was applied to; a failed purchase releases it).
A subscription carries at most one discount and the number of charges it still discounts.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('coupons',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('code_key', sa.String(length=64), nullable=False),
    sa.Column('percent_off_bp', sa.Integer(), nullable=True),
    sa.Column('amount_off', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('duration', sa.String(length=16), nullable=False),
    sa.Column('duration_periods', sa.Integer(), nullable=True),
    sa.Column('plans', sa.JSON(), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('bundles', sa.JSON(), nullable=False),
    sa.Column('redeem_by', sa.DateTime(timezone=True), nullable=True),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('times_redeemed', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('times_redeemed >= 0 AND (max_redemptions IS NULL OR times_redeemed <= max_redemptions)', name=op.f('ck_coupons_redemptions_within_limit')),
    sa.CheckConstraint('(percent_off_bp IS NULL) <> (amount_off IS NULL)', name=op.f('ck_coupons_one_kind_of_discount')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code_key', name=op.f('uq_coupons_code_key'))
    )
    op.create_table('coupon_redemptions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('coupon_id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('applied_to', sa.String(length=16), nullable=False),
    sa.Column('subscription_id', sa.String(length=40), nullable=True),
    sa.Column('invoice_id', sa.String(length=40), nullable=True),
    sa.Column('plan', sa.String(length=64), nullable=True),
    sa.Column('term', sa.String(length=16), nullable=True),
    sa.Column('bundle', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_coupon_redemptions_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_coupon_redemptions_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_redemptions'))
    )
    with op.batch_alter_table('coupon_redemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_redemptions_coupon_id'), ['coupon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupon_redemptions_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupon_redemptions_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('subscription_discounts',
    sa.Column('subscription_id', sa.String(length=40), nullable=False),
    sa.Column('coupon_id', sa.String(length=40), nullable=False),
    sa.Column('redemption_id', sa.String(length=40), nullable=False),
    sa.Column('periods_left', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_subscription_discounts_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], name=op.f('fk_subscription_discounts_subscription_id_subscriptions')),
    sa.PrimaryKeyConstraint('subscription_id', name=op.f('pk_subscription_discounts'))
    )
    with op.batch_alter_table('subscription_discounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscription_discounts_coupon_id'), ['coupon_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subscription_discounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscription_discounts_coupon_id'))

    op.drop_table('subscription_discounts')
    with op.batch_alter_table('coupon_redemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupon_redemptions_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_coupon_redemptions_customer_id'))
        batch_op.drop_index(batch_op.f('ix_coupon_redemptions_coupon_id'))

    op.drop_table('coupon_redemptions')
    op.drop_table('coupons')
