"""Lists a page at a time, in a stable order, continued after the last row seen."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from creditflow.kit.errors import NotFound


def page_after(session: Session, query: Select, *, order_by: InstrumentedAttribute, id_column: InstrumentedAttribute,
               starting_after: str | None, limit: int, noun: str) -> tuple[list, bool]:
    """Up to `limit` rows of `query` in `order_by` order, after the row whose id is
    `starting_after` (which must exist), and whether more rows follow."""
    if starting_after is not None:
        cursor = session.scalar(select(order_by).where(id_column == starting_after))
        if cursor is None:
            raise NotFound(f"no such {noun}: {starting_after}", param="starting_after")
        query = query.where(order_by > cursor)
    rows = list(session.scalars(query.order_by(order_by).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
