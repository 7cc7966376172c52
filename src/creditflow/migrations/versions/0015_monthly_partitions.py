"""Monthly partitions of the history tables (PostgreSQL); 64-bit sequence numbers; archive summaries

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 09:40:00

PostgreSQL: `credit_entries`, `events` and `webhook_deliveries` become partitioned by RANGE on
`created_at`, one partition per calendar month (UTC) named `<table>_pYYYYMM`, and a DEFAULT
partition `<table>_default` for any row of a month without its own partition (a test clock's
far-future time). Partitions are made for every month that holds rows (within the last ten
years and up to the current month), the current month and the next two; the worker keeps
making them ahead from then on. Every row is copied, with its sequence number, and the
sequences continue where they were.

What changes with the partitioning, because PostgreSQL requires a primary key or unique
constraint of a partitioned table to include the partition key:
- primary keys: credit_entries (seq, created_at), events (seq, created_at),
  webhook_deliveries (id, created_at). `seq` and `id` stay unique in practice: one sequence
  hands them out and nothing else writes them.
- the public `id` of ledger entries and events: UNIQUE (id, created_at) instead of UNIQUE (id).
  Ids are 50 bits of the millisecond and 80 random bits (or derived from a spend's id, which
  credit_spends keeps unique), so a duplicate is not a risk to guard against; the index still
  serves lookups by id.
- one delivery per event and endpoint: UNIQUE (endpoint_id, event_seq, created_at). The
  fan-out marks each event dispatched in the transaction that creates its deliveries, with the
  event locked, which is what keeps it once per endpoint.
Checks, foreign keys, the partial indexes and the triggers that refuse UPDATE, DELETE and
TRUNCATE on ledger entries stay as they were (declared on the parent, so every partition has them).

Every column holding a ledger entry's, an event's or a delivery's number becomes bigint
(credit_entries.seq, events.seq, webhook_deliveries.id and .event_seq,
webhook_endpoints.after_seq; the checkpoint's through_seq already was), and so do their
sequences: 32 bits last about 100 days at 20 million entries a day. SQLite's integers are 64-bit
already: nothing changes there.

Both backends get what `creditflow archive` needs: `archived_months` (what was exported where,
with a row count and a checksum) and the per-customer and per-lot sums of archived ledger
entries (`ledger_archived_accounts`, `ledger_archived_lots`), from which the full ledger check
starts.

On a large database the upgrade copies the three tables: run it in a quiet hour, with the API
stopped. Downgrade copies them back into plain tables (refusing with a clear error if a number
no longer fits in 32 bits, or if months were archived).
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

from creditflow.migrations.schema import earlier_revision

revision = '0015'
down_revision = '0014'


# Per table: its sequence-numbered column, the primary key and unique constraints before (0014)
# and after (0015) the partitioning, and the columns that become bigint.
TABLES = {
    'credit_entries': {
        'serial': 'seq',
        'before': [('pk_credit_entries', 'PRIMARY KEY (seq)'), ('uq_credit_entries_id', 'UNIQUE (id)')],
        'after': [('pk_credit_entries', 'PRIMARY KEY (seq, created_at)'),
                  ('uq_credit_entries_id_created_at', 'UNIQUE (id, created_at)')],
        'bigint': ['seq'],
    },
    'events': {
        'serial': 'seq',
        'before': [('pk_events', 'PRIMARY KEY (seq)'), ('uq_events_id', 'UNIQUE (id)')],
        'after': [('pk_events', 'PRIMARY KEY (seq, created_at)'), ('uq_events_id_created_at', 'UNIQUE (id, created_at)')],
        'bigint': ['seq'],
    },
    'webhook_deliveries': {
        'serial': 'id',
        'before': [('pk_webhook_deliveries', 'PRIMARY KEY (id)'),
                   ('uq_webhook_deliveries_endpoint_id_event_seq', 'UNIQUE (endpoint_id, event_seq)')],
        'after': [('pk_webhook_deliveries', 'PRIMARY KEY (id, created_at)'),
                  ('uq_webhook_deliveries_endpoint_id_event_seq_created_at', 'UNIQUE (endpoint_id, event_seq, created_at)')],
        'bigint': ['id', 'event_seq'],
    },
}

_initial = earlier_revision("0001_initial.py")  # its append-only triggers, made again


def _totals(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        'archived_months',
        sa.Column('table_name', sa.String(length=32), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('rows', sa.BigInteger(), nullable=False),
        sa.Column('through_key', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('file', sa.String(length=1000), nullable=False),
        sa.Column('archived_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('exported', 'done')", name=op.f('ck_archived_months_status')),
        sa.PrimaryKeyConstraint('table_name', 'month', name=op.f('pk_archived_months')),
    )
    op.create_table(
        'ledger_archived_accounts',
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        *_totals('granted', 'spent', 'expired', 'held', 'available', 'entries'),
        sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_ledger_archived_accounts')),
    )
    op.create_table(
        'ledger_archived_lots',
        sa.Column('lot_id', sa.String(length=40), nullable=False),
        *_totals('granted', 'remaining'),
        sa.PrimaryKeyConstraint('lot_id', name=op.f('pk_ledger_archived_lots')),
    )
    if op.get_context().dialect.name != 'postgresql':
        return
    # ### hand-written: partitions and bigint sequence numbers ###
    op.execute("ALTER TABLE webhook_endpoints ALTER COLUMN after_seq TYPE bigint")
    now = datetime.now(timezone.utc)
    current = now.year * 12 + now.month - 1
    for table, spec in TABLES.items():
        _rebuild(table, spec['before'], spec['after'], spec, partitioned=True, current=current)
    _initial.append_only_triggers_on_postgres()
    # ### end hand-written ###


def downgrade() -> None:
    if op.get_context().dialect.name == 'postgresql':
        # ### hand-written: back to plain tables ###
        archived = op.get_bind().execute(sa.text("SELECT count(*) FROM archived_months")).scalar()
        if archived:
            raise RuntimeError(
                "0015 can't be downgraded: months of history were archived (archived_months) and their "
                "rows are in the export files only; restore them first or stay at 0015")
        for table, spec in TABLES.items():
            for column in spec['bigint']:
                too_big = op.get_bind().execute(sa.text(
                    f"SELECT 1 FROM {table} WHERE {column} > 2147483647 LIMIT 1")).first()
                if too_big:
                    raise RuntimeError(f"0015 can't be downgraded: {table}.{column} holds numbers above "
                                       "2147483647, which don't fit the 32-bit column of 0014")
        for table, spec in TABLES.items():
            _rebuild(table, spec['after'], spec['before'], spec, partitioned=False)
        _initial.append_only_triggers_on_postgres()
        op.execute("ALTER TABLE webhook_endpoints ALTER COLUMN after_seq TYPE integer")
        # ### end hand-written ###
    op.drop_table('ledger_archived_lots')
    op.drop_table('ledger_archived_accounts')
    op.drop_table('archived_months')


# ### hand-written: rebuilding a table ###
def _rebuild(table: str, old_keys: list, new_keys: list, spec: dict, *, partitioned: bool,
             current: int = 0) -> None:
    """Replace `table` by a new one (partitioned by month, or plain) holding the same rows.

    The old table's indexes and foreign keys are read from the catalog and made again on the
    new one under the same names; its checks and defaults come with CREATE TABLE ... LIKE; the
    sequence behind the numbered column moves to the new table, as bigint or integer."""
    bind = op.get_bind()
    old = f"{table}_before_0015" if partitioned else f"{table}_partitioned"
    serial = spec['serial']
    sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": serial}).scalar()
    keys = {name for name, _ in old_keys}
    indexes = bind.execute(sa.text(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = to_regclass(:t) ORDER BY i.relname"), {"t": table}).all()
    indexes = [(name, ddl) for name, ddl in indexes if name not in keys]
    foreign = bind.execute(sa.text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(:t) "
        "AND contype = 'f' ORDER BY conname"), {"t": table}).all()
    for name, _ in indexes:
        op.execute(f"DROP INDEX {name}")
    for name, _ in old_keys:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, _ in foreign:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    if table == 'credit_entries':
        op.execute("DROP TRIGGER IF EXISTS credit_entries_no_change ON credit_entries")
        op.execute("DROP TRIGGER IF EXISTS credit_entries_no_truncate ON credit_entries")
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    kind = 'bigint' if partitioned else 'integer'
    op.execute(f"ALTER SEQUENCE {sequence} AS {kind}")
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
               + (" PARTITION BY RANGE (created_at)" if partitioned else ""))
    for column in spec['bigint']:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {kind}")
    if partitioned:
        months = set(range(current, current + 3))
        # Every month holding rows, from ten years back up to the current month; rows outside
        # go to the DEFAULT partition.
        for (year, month) in bind.execute(sa.text(
                f"SELECT DISTINCT extract(year FROM created_at AT TIME ZONE 'UTC')::int, "
                f"extract(month FROM created_at AT TIME ZONE 'UTC')::int FROM {old}")):
            index = year * 12 + month - 1
            if current - 120 <= index <= current:
                months.add(index)
        for index in sorted(months):
            lower = f"{index // 12:04d}-{index % 12 + 1:02d}-01 00:00:00+00"
            upper = f"{(index + 1) // 12:04d}-{(index + 1) % 12 + 1:02d}-01 00:00:00+00"
            op.execute(f"CREATE TABLE {table}_p{index // 12:04d}{index % 12 + 1:02d} PARTITION OF {table} "
                       f"FOR VALUES FROM ('{lower}') TO ('{upper}')")
        op.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old} CASCADE")
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.{serial}")
    for name, ddl in new_keys:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {ddl}")
    for name, ddl in foreign:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {ddl}")
    for name, ddl in indexes:
        op.execute(ddl.replace(f" ON {old} ", f" ON {table} ").replace(f" ON public.{old} ", f" ON public.{table} ")
                   .replace(" ON ONLY ", " ON "))
# ### end hand-written ###
