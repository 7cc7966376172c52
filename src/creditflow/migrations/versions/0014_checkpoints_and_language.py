"""Ledger checkpoints; indexes for long histories; a customer's language

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 07:05:00

What `creditflow ledger check` last verified: the sums of every ledger entry up to a sequence
number, per customer and per lot, so that the next check adds only the entries written since.

The indexes on a customer's ledger entries and events become (customer_id, seq), so that a page
of a customer's entries or events, or their entries after a checkpoint, doesn't read or sort
the rest of their history. On a large PostgreSQL database, building them takes a while and
holds back writes to those tables meanwhile: run this upgrade in a quiet hour.

Customers get a `language`, which picks the templates of their emails.

PostgreSQL gets `creditflow_team_spend`: a team member's usual spend in one statement, as
`creditflow_spend` is anyone else's (see TEAM_SPEND_FUNCTION).
"""
from alembic import op

from creditflow.migrations.schema import add_columns, create_table, drop_columns
from creditflow.migrations.schema import bigint, ident, integer, string, timestamp

revision = '0014'
down_revision = '0013'


# A team member's usual spend in one statement: the member's row locked and their monthly usage
# checked and counted (as team/usage.py `charge_member` does), then `creditflow_spend` for the
# pool. Anything else answers `slow` having changed nothing, and the service takes the general
# path: a customer on a test clock, a member not active, over their limit, or anything
# `creditflow_spend` declines. The period is the month (counted from the team's anchor, in UTC,
# days clamped to the month's end) that holds now, written as team/usage.py `period_key` writes
# it. tests/integration/credits/test_pg_team_spend_function.py compares both ways.
TEAM_SPEND_FUNCTION = r"""
CREATE OR REPLACE FUNCTION creditflow_team_spend(
    p_customer_id text, p_reference text, p_feature text, p_amount bigint, p_kinds text[],
    p_free_allowed boolean, p_plans text[], p_free_daily boolean, p_free_for_subscribers boolean,
    p_reset_timezone text, p_now timestamptz, p_spend_id text,
    p_member text                    -- the member who spends
) RETURNS TABLE (outcome text, spent_at timestamptz, balance bigint, draws text)
LANGUAGE plpgsql AS $$
DECLARE
    v_member record;
    v_anchor timestamp;  -- UTC
    v_now timestamp;     -- UTC
    v_k integer;
    v_period text;
    v_used bigint;
    v_spent record;
BEGIN
    -- The pool's account first, as every spend of the team locks it.
    PERFORM 1 FROM credit_accounts a JOIN customers c ON c.id = a.customer_id
      WHERE a.customer_id = p_customer_id AND c.test_clock_id IS NULL
        FOR UPDATE OF a;
    IF NOT FOUND THEN
        outcome := 'slow'; RETURN NEXT; RETURN;  -- unknown, or living on a test clock's time
    END IF;
    SELECT t.anchor, m.status, m.monthly_limit, m.used, m.used_period INTO v_member
      FROM teams t JOIN team_members m ON m.customer_id = t.customer_id
     WHERE m.id = p_member AND t.customer_id = p_customer_id
       FOR UPDATE OF m;
    IF NOT FOUND OR v_member.status <> 'active' THEN
        outcome := 'slow'; RETURN NEXT; RETURN;  -- Python says why
    END IF;
    v_anchor := v_member.anchor AT TIME ZONE 'UTC';
    v_now := p_now AT TIME ZONE 'UTC';
    v_k := (extract(year FROM v_now) - extract(year FROM v_anchor))::integer * 12
           + (extract(month FROM v_now) - extract(month FROM v_anchor))::integer;
    WHILE v_anchor + make_interval(months => v_k) > v_now LOOP
        v_k := v_k - 1;
    END LOOP;
    WHILE v_anchor + make_interval(months => v_k + 1) <= v_now LOOP
        v_k := v_k + 1;
    END LOOP;
    v_period := to_char(v_anchor + make_interval(months => greatest(v_k, 0)), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    v_used := CASE WHEN v_member.used_period = v_period THEN v_member.used ELSE 0 END;
    IF v_member.monthly_limit IS NOT NULL AND v_used + p_amount > v_member.monthly_limit THEN
        outcome := 'slow'; RETURN NEXT; RETURN;  -- over the member's limit: Python refuses
    END IF;
    SELECT * INTO v_spent FROM creditflow_spend(p_customer_id, p_reference, p_feature, p_amount, p_kinds,
        p_free_allowed, p_plans, p_free_daily, p_free_for_subscribers, p_reset_timezone, p_now, p_spend_id);
    IF v_spent.outcome <> 'spent' THEN
        outcome := v_spent.outcome; RETURN NEXT; RETURN;
    END IF;
    UPDATE team_members SET used = v_used + p_amount, used_period = v_period WHERE id = p_member;
    INSERT INTO team_spends (id, customer_id, reference, member_id, counted, period, created_at)
    VALUES (p_spend_id, p_customer_id, p_reference, p_member, p_amount, v_period, v_spent.spent_at);
    outcome := 'spent';
    spent_at := v_spent.spent_at;
    balance := v_spent.balance;
    draws := v_spent.draws;
    RETURN NEXT;
END $$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(TEAM_SPEND_FUNCTION)
    add_columns('customers', string('language', 35, null=True))
    create_table(
        'ledger_checkpoints',
        integer('id', autoincrement=False),
        bigint('through_seq'),
        bigint('entries'),
        timestamp('checked_at'),
    )
    create_table(
        'ledger_checkpoint_accounts',
        ident('customer_id'),
        *map(bigint, ('granted', 'spent', 'expired', 'held', 'available')),
        primary_key='customer_id',
    )
    create_table(
        'ledger_checkpoint_lots',
        ident('lot_id'),
        *map(bigint, ('granted', 'remaining')),
        primary_key='lot_id',
    )
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_credit_entries_customer_seq', ['customer_id', 'seq'], unique=False)
        batch_op.drop_index(batch_op.f('ix_credit_entries_customer_id'))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_customer_seq', ['customer_id', 'seq'], unique=False)
        batch_op.drop_index(batch_op.f('ix_events_customer_id'))


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS creditflow_team_spend(text, text, text, bigint, text[], boolean, text[], "
                   "boolean, boolean, text, timestamptz, text, text)")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_customer_id'), ['customer_id'], unique=False)
        batch_op.drop_index('ix_events_customer_seq')
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_entries_customer_id'), ['customer_id'], unique=False)
        batch_op.drop_index('ix_credit_entries_customer_seq')
    drop_columns('customers', 'language')
    op.drop_table('ledger_checkpoint_lots')
    op.drop_table('ledger_checkpoint_accounts')
    op.drop_table('ledger_checkpoints')
