"""The PostgreSQL spend function records the spend's event

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 20:00:00

Every change of a customer's credits records an event in its transaction; the one-statement
spend writes its `credits.spent` event itself, with the same data the general path writes
(amounts as credit strings: "12.5"). The event's id shares the spend id's characters.
"""
from alembic import op

from creditflow.migrations.schema import earlier_revision

revision = '0003'
down_revision = '0002'

_previous = earlier_revision("0002_account_plan.py")

# Thousandths as the API writes credits: "12", "12.5", "0.001".
CREDITS_TEXT = r"""
CREATE OR REPLACE FUNCTION creditflow_credits_text(p_milli bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_milli < 0 THEN '-' ELSE '' END || (abs(p_milli) / 1000)::text
           || CASE WHEN abs(p_milli) % 1000 = 0 THEN ''
                   ELSE '.' || rtrim(lpad((abs(p_milli) % 1000)::text, 3, '0'), '0') END
$$
"""

_RECORD_EVENT = ("    outcome := 'spent';\n",
                 "    INSERT INTO events (id, type, customer_id, data, created_at, dispatched)\n"
                 "    VALUES ('evt_' || substr(p_spend_id, 5), 'credits.spent', p_customer_id,\n"
                 "            json_build_object('spend', p_spend_id, 'reference', p_reference, 'feature', p_feature,\n"
                 "                              'amount', creditflow_credits_text(p_amount),\n"
                 "                              'balance', creditflow_credits_text(account.available - p_amount)),\n"
                 "            v_now, false);\n"
                 "    outcome := 'spent';\n")
SPEND_FUNCTION = _previous.SPEND_FUNCTION
assert SPEND_FUNCTION.count(_RECORD_EVENT[0]) == 1
SPEND_FUNCTION = SPEND_FUNCTION.replace(*_RECORD_EVENT)


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(CREDITS_TEXT)
        op.execute(SPEND_FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_previous.SPEND_FUNCTION)
        op.execute("DROP FUNCTION IF EXISTS creditflow_credits_text(bigint)")
