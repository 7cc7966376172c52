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
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "status IN ('invited', 'active', 'suspended')"


def upgrade() -> None:
    op.create_table('teams',
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('anchor', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_teams_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_teams'))
    )
    op.create_table('team_members',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('suspended_reason', sa.String(length=16), nullable=True),
    sa.Column('monthly_limit', sa.BigInteger(), nullable=True),
    sa.Column('used', sa.BigInteger(), nullable=False),
    sa.Column('used_period', sa.String(length=32), nullable=True),
    sa.Column('invite_token_hash', sa.String(length=64), nullable=True),
    sa.Column('invite_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('owner', 'admin', 'member')", name=op.f('ck_team_members_role')),
    sa.CheckConstraint("status IN ('invited', 'active', 'suspended', 'removed', 'revoked')",
                       name=op.f('ck_team_members_status')),
    sa.CheckConstraint('used >= 0', name=op.f('ck_team_members_used_not_negative')),
    sa.CheckConstraint('monthly_limit IS NULL OR monthly_limit >= 0', name=op.f('ck_team_members_limit_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_team_members_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_members')),
    sa.UniqueConstraint('invite_token_hash', name=op.f('uq_team_members_invite_token_hash'))
    )
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_members_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_team_members_external_id'), ['external_id'], unique=False)
        batch_op.create_index('uq_team_members_email', ['customer_id', 'email'], unique=True,
                              sqlite_where=sa.text(CURRENT), postgresql_where=sa.text(CURRENT))
        batch_op.create_index('uq_team_members_external_id', ['customer_id', 'external_id'], unique=True,
                              sqlite_where=sa.text(CURRENT + " AND external_id IS NOT NULL"),
                              postgresql_where=sa.text(CURRENT + " AND external_id IS NOT NULL"))

    op.create_table('team_spends',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.Column('member_id', sa.String(length=40), nullable=False),
    sa.Column('counted', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('counted >= 0', name=op.f('ck_team_spends_counted_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_team_spends_customer_id_customers')),
    sa.ForeignKeyConstraint(['member_id'], ['team_members.id'], name=op.f('fk_team_spends_member_id_team_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_spends')),
    sa.UniqueConstraint('customer_id', 'reference', name=op.f('uq_team_spends_customer_id_reference'))
    )
    with op.batch_alter_table('team_spends', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_spends_member_id'), ['member_id'], unique=False)

    op.create_table('auto_top_ups',
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('threshold', sa.BigInteger(), nullable=False),
    sa.Column('bundle', sa.String(length=64), nullable=False),
    sa.Column('monthly_max', sa.Integer(), nullable=False),
    sa.Column('armed', sa.Boolean(), nullable=False),
    sa.Column('in_flight_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('in_flight_reference', sa.String(length=120), nullable=True),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purchases', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('last_failure', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('monthly_max >= 0 AND purchases >= 0', name=op.f('ck_auto_top_ups_counts_not_negative')),
    sa.CheckConstraint('threshold >= 0', name=op.f('ck_auto_top_ups_threshold_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_auto_top_ups_customer_id_customers')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_auto_top_ups'))
    )
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.drop_column('member_id')
    op.drop_table('auto_top_ups')
    with op.batch_alter_table('team_spends', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_spends_member_id'))
    op.drop_table('team_spends')
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.drop_index('uq_team_members_external_id')
        batch_op.drop_index('uq_team_members_email')
        batch_op.drop_index(batch_op.f('ix_team_members_external_id'))
        batch_op.drop_index(batch_op.f('ix_team_members_customer_id'))
    op.drop_table('team_members')
    op.drop_table('teams')
