"""Tax and discount on invoices

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 03:05:00

An invoice gains `discount` (the amount taken off by a coupon, a positive number; its line is
a negative `discount` line), and a line gains the tax `rate` (a percent, as a decimal string)
and the `country` (or country-region) it was taxed for; both are null on other lines. Invoices
issued before this have no discount and no tax lines.
"""
from creditflow.migrations.schema import add_columns, bigint, drop_columns, string

revision = '0007'
down_revision = '0006'


def upgrade() -> None:
    add_columns('invoices', bigint('discount', default='0'))
    add_columns('invoice_lines', string('rate', 16, null=True), string('country', 16, null=True))


def downgrade() -> None:
    drop_columns('invoice_lines', 'country', 'rate')
    drop_columns('invoices', 'discount')
