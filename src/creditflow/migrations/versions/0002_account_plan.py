"""The plan of the customer's active subscription kept on the credit account

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 19:00:00

What a spend may pay for depends on the plan the customer is on. The credit ledger used to read
it from the subscriptions; it now reads it from the account row it locks anyway, kept by the
subscription package with every change of the subscription. The backfill copies the plan of
every active subscription; the PostgreSQL spend function reads the new column.
"""
from alembic import op

from creditflow.migrations.schema import add_columns, drop_columns, earlier_revision, string

revision = '0002'
down_revision = '0001'

# The spend function as 0001 created it, changed in exactly two places.
_initial = earlier_revision("0001_initial.py")
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
    add_columns('credit_accounts', string('plan', 64, null=True))
    op.execute("UPDATE credit_accounts SET plan = (SELECT s.plan FROM subscriptions s "
               "WHERE s.customer_id = credit_accounts.customer_id AND s.status = 'active')")
    if op.get_context().dialect.name == "postgresql":
        op.execute(SPEND_FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_initial.SPEND_FUNCTION)
    drop_columns('credit_accounts', 'plan')
