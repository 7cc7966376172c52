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
from creditflow.migrations.schema import add_columns, bigint, drop_columns, timestamp

revision = '0013'
down_revision = '0012'


def upgrade() -> None:
    add_columns(
        'subscriptions',
        bigint('price', null=True),
        bigint('next_price', null=True),
        timestamp('next_price_from', null=True),
        bigint('scheduled_price', null=True),
    )


def downgrade() -> None:
    drop_columns('subscriptions', 'scheduled_price', 'next_price_from', 'next_price', 'price')
