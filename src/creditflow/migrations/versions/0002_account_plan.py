"""The plan of the customer's active subscription kept on the credit account

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 19:00:00

What a spend may pay for depends on the plan the customer is on. The credit ledger used to read
it from the subscriptions; it now reads it from the account row it locks anyway, kept by the
subscription package with every change of the subscription. The backfill copies the plan of
every active subscription; the PostgreSQL spend function reads the new column.
"""
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The spend function as 0001 created it, changed in exactly two places.
_spec = importlib.util.spec_from_file_location("creditflow_migration_0001",
                                               Path(__file__).with_name("0001_initial.py"))
_initial = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_initial)
_READ_ACCOUNT = ("SELECT a.available, a.held, a.free_day, c.timezone, k.frozen_time INTO account",
                 "SELECT a.available, a.held, a.free_day, a.plan, c.timezone, k.frozen_time INTO account")
_READ_PLAN = ("SELECT s.plan INTO v_plan FROM subscriptions s WHERE s.customer_id = p_customer_id "
              "AND s.status = 'active' LIMIT 1;",
              "v_plan := account.plan;")
SPEND_FUNCTION = _initial.SPEND_FUNCTION
for _old, _new in (_READ_ACCOUNT, _READ_PLAN):
    assert SPEND_FUNCTION.count(_old) == 1, _old
    SPEND_FUNCTION = SPEND_FUNCTION.replace(_old, _new)


def upgrade() -> None:
    with op.batch_alter_table('credit_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan', sa.String(length=64), nullable=True))
    op.execute("UPDATE credit_accounts SET plan = (SELECT s.plan FROM subscriptions s "
               "WHERE s.customer_id = credit_accounts.customer_id AND s.status = 'active')")
    if op.get_context().dialect.name == "postgresql":
        op.execute(SPEND_FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_initial.SPEND_FUNCTION)
    with op.batch_alter_table('credit_accounts', schema=None) as batch_op:
        batch_op.drop_column('plan')
