"""Injected clocks. Nothing in creditflow calls `datetime.now()` except `SystemClock`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Protocol


def utc(dt: datetime) -> datetime:
    """Refuse naive datetimes; normalise aware ones to UTC."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: every instant must be timezone-aware")
    return dt.astimezone(timezone.utc)


def parse_instant(value: str) -> datetime:
    """ISO 8601 with an offset or `Z`; naive strings are refused rather than guessed."""
    return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def format_instant(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that tests move by hand."""

    def __init__(self, at: datetime):
        self._at = utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = utc(at)
