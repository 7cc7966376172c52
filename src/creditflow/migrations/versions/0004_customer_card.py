"""The card of a customer's payment method, as the gateway described it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 20:30:00

The billing page and `GET /v1/customers/<id>/payment_method` show the card on file (brand, last
four digits, expiry). Customers who set a sandbox test method before get its test card; a
Stripe method's card is filled in the next time a method is set.
"""
import sqlalchemy as sa
from alembic import op

from creditflow.migrations.schema import add_columns, drop_columns, json

revision = '0004'
down_revision = '0003'

# The sandbox's test cards (payment/sandbox.py CARDS) as they were when this ran.
_SANDBOX_CARDS = {
    "pm_card_ok": ("visa", "4242"),
    "pm_card_declined": ("visa", "0002"),
    "pm_card_timeout": ("visa", "0341"),
    "pm_card_ok_then_declined": ("mastercard", "4444"),
}


def upgrade() -> None:
    add_columns('customers', json('card', null=True))
    customers = sa.table("customers", sa.column("payment_method", sa.String), sa.column("card", sa.JSON))
    for token, (brand, last4) in _SANDBOX_CARDS.items():
        op.execute(customers.update().where(customers.c.payment_method == token).values(
            card={"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034}))


def downgrade() -> None:
    drop_columns('customers', 'card')
