"""Coupons, their redemptions, and the discount a subscription carries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 03:35:11

A coupon takes a percent (in hundredths) or an amount off, once, for a number of periods or
forever, limited to plans, terms or bundles; its code is unique whatever its case (`code_key`).
A redemption is one use by a customer (what it was applied to; a failed purchase releases it).
A subscription carries at most one discount and the number of charges it still discounts.
"""
from alembic import op

from creditflow.migrations.schema import bigint, create_table, ident, integer, json, string, timestamp

revision = '0008'
down_revision = '0007'


def upgrade() -> None:
    create_table(
        'coupons',
        ident('id'),
        string('code', 64),
        string('code_key', 64),
        integer('percent_off_bp', null=True),
        bigint('amount_off', null=True),
        string('currency', 3),
        string('duration', 16),
        integer('duration_periods', null=True),
        json('plans'),
        json('terms'),
        json('bundles'),
        timestamp('redeem_by', null=True),
        integer('max_redemptions', null=True),
        integer('times_redeemed'),
        timestamp('created_at'),
        checks={
            'redemptions_within_limit':
                'times_redeemed >= 0 AND (max_redemptions IS NULL OR times_redeemed <= max_redemptions)',
            'one_kind_of_discount': '(percent_off_bp IS NULL) <> (amount_off IS NULL)',
        },
        unique=['code_key'],
    )
    create_table(
        'coupon_redemptions',
        ident('id'),
        ident('coupon_id'),
        ident('customer_id'),
        string('applied_to', 16),
        ident('subscription_id', null=True),
        ident('invoice_id', null=True),
        string('plan', 64, null=True),
        string('term', 16, null=True),
        string('bundle', 64, null=True),
        bigint('amount'),
        timestamp('created_at'),
        timestamp('released_at', null=True),
        foreign_keys={'coupon_id': 'coupons', 'customer_id': 'customers'},
        indexes=['coupon_id', 'customer_id', 'invoice_id'],
    )
    create_table(
        'subscription_discounts',
        ident('subscription_id'),
        ident('coupon_id'),
        ident('redemption_id'),
        integer('periods_left', null=True),
        timestamp('created_at'),
        timestamp('updated_at'),
        primary_key='subscription_id',
        foreign_keys={'coupon_id': 'coupons', 'subscription_id': 'subscriptions'},
        indexes=['coupon_id'],
    )


def downgrade() -> None:
    for table in ('subscription_discounts', 'coupon_redemptions', 'coupons'):
        op.drop_table(table)
