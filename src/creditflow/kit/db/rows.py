"""A row by its id, or the NotFound error every entry point knows how to answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from creditflow.kit.errors import NotFound

R = TypeVar("R")


def get_or_not_found(session: Session, model: type[R], key: str, *, noun: str, param: str,
                     exists: Callable[[R], bool] | None = None, **options: Any) -> R:
    """`session.get(model, key, **options)`, or NotFound ("no such <noun>: <key>", at `param`)
    when there is no such row or `exists` says it no longer counts (removed, deleted, another's)."""
    row = session.get(model, key, **options)
    if row is None or (exists is not None and not exists(row)):
        raise NotFound(f"no such {noun}: {key}", param=param)
    return row


def locking(for_update: bool, mode: dict[str, Any] | None = None) -> dict[str, Any]:
    """`session.get`'s options for a row read to be changed (`for_update`): locked (in `mode`,
    e.g. `{"key_share": True}`, else FOR UPDATE) and read afresh from the database, whatever an
    earlier read in the session left in memory. Otherwise a plain read."""
    return {"with_for_update": (mode or True) if for_update else None, "populate_existing": for_update}
