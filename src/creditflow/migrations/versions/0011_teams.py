"""Teams: members, invitations, per-member limits, auto top-up

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 06:45:00

A team is a customer with members (its owner's seat included). A member holds a seat while
invited (until the invitation expires), active or suspended; `used` is their spending in the
monthly period named by `used_period`. `team_spends` names the member of each team spend or
hold by its reference. `auto_top_ups` keeps a customer's auto top-up settings and the claim a
worker takes before buying. A portal session may be a team member's (`member_id`).
"""
from alembic import op

from creditflow.migrations.schema import add_columns, create_table, drop_columns, partial_index
from creditflow.migrations.schema import bigint, boolean, ident, integer, string, timestamp

revision = '0011'
down_revision = '0010'

CURRENT = "status IN ('invited', 'active', 'suspended')"


def upgrade() -> None:
    create_table(
        'teams',
        ident('customer_id'),
        timestamp('anchor'),
        timestamp('created_at'),
        primary_key='customer_id',
        foreign_keys={'customer_id': 'customers'},
    )
    create_table(
        'team_members',
        ident('id'),
        ident('customer_id'),
        string('email', 320),
        string('external_id', 255, null=True),
        string('role', 16),
        string('status', 16),
        string('suspended_reason', 16, null=True),
        bigint('monthly_limit', null=True),
        bigint('used'),
        string('used_period', 32, null=True),
        string('invite_token_hash', 64, null=True),
        timestamp('invite_expires_at', null=True),
        timestamp('joined_at', null=True),
        timestamp('ended_at', null=True),
        timestamp('created_at'),
        checks={
            'role': "role IN ('owner', 'admin', 'member')",
            'status': "status IN ('invited', 'active', 'suspended', 'removed', 'revoked')",
            'used_not_negative': 'used >= 0',
            'limit_not_negative': 'monthly_limit IS NULL OR monthly_limit >= 0',
        },
        foreign_keys={'customer_id': 'customers'},
        unique=['invite_token_hash'],
        indexes=['customer_id', 'external_id'],
    )
    partial_index('uq_team_members_email', 'team_members', ['customer_id', 'email'], CURRENT, unique=True)
    partial_index('uq_team_members_external_id', 'team_members', ['customer_id', 'external_id'],
                  CURRENT + " AND external_id IS NOT NULL", unique=True)
    create_table(
        'team_spends',
        ident('id'),
        ident('customer_id'),
        string('reference', 255),
        ident('member_id'),
        bigint('counted'),
        string('period', 32),
        timestamp('created_at'),
        checks={'counted_not_negative': 'counted >= 0'},
        foreign_keys={'customer_id': 'customers', 'member_id': 'team_members'},
        unique=[('customer_id', 'reference')],
        indexes=['member_id'],
    )
    create_table(
        'auto_top_ups',
        ident('customer_id'),
        boolean('enabled'),
        bigint('threshold'),
        string('bundle', 64),
        integer('monthly_max'),
        boolean('armed'),
        timestamp('in_flight_since', null=True),
        string('in_flight_reference', 120, null=True),
        timestamp('period_start', null=True),
        integer('purchases'),
        integer('sequence'),
        string('last_failure', 500, null=True),
        timestamp('updated_at'),
        primary_key='customer_id',
        checks={
            'counts_not_negative': 'monthly_max >= 0 AND purchases >= 0',
            'threshold_not_negative': 'threshold >= 0',
        },
        foreign_keys={'customer_id': 'customers'},
    )
    add_columns('portal_sessions', ident('member_id', null=True))


def downgrade() -> None:
    drop_columns('portal_sessions', 'member_id')
    for table in ('auto_top_ups', 'team_spends', 'team_members', 'teams'):
        op.drop_table(table)
