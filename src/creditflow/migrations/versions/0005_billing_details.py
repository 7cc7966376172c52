"""Billing details on customers, and on each invoice as it was issued

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 20:40:00

Customers gain an address and a tax id (name, email and country they had). Each invoice keeps
who sold and who bought as they were when it was issued; invoices issued before this have
neither (null).
"""
from creditflow.migrations.schema import add_columns, drop_columns, json, string

revision = '0005'
down_revision = '0004'


def upgrade() -> None:
    add_columns('customers', json('address', null=True), string('tax_id', 64, null=True))
    add_columns('invoices', json('seller', null=True), json('bill_to', null=True))


def downgrade() -> None:
    drop_columns('invoices', 'bill_to', 'seller')
    drop_columns('customers', 'tax_id', 'address')
