"""The customer lock of a purchase or a billing details update (`get_customer(for_update=True)`)
guards only non-key columns, so on PostgreSQL it is FOR NO KEY UPDATE: a spend's ledger insert,
whose foreign key takes a key-share lock on the same customer row, doesn't wait for it, while a
second purchase of the same customer still does."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from creditflow.customer.service import create_customer, get_customer
from creditflow.wiring import build_context

NOW = datetime(2026, 3, 10, 10, tzinfo=timezone.utc)


def test_a_locked_customer_still_takes_key_share_locks_but_not_a_second_lock(pg_db):
    ctx = build_context(pg_db)
    with pg_db.transaction() as session:
        customer_id = create_customer(ctx, session, external_id="lock-1", email="l@example.com").id
    with pg_db.transaction() as session:
        get_customer(session, customer_id, for_update=True)
        with pg_db.engine.connect() as other:
            # What a foreign-key check of an insert referencing the customer takes.
            other.execute(text("SELECT id FROM customers WHERE id = :id FOR KEY SHARE NOWAIT"),
                          {"id": customer_id})
            other.rollback()
            with pytest.raises(OperationalError, match="could not obtain lock"):
                other.execute(text("SELECT id FROM customers WHERE id = :id FOR NO KEY UPDATE NOWAIT"),
                              {"id": customer_id})
            other.rollback()
