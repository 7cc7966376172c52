"""Validating what callers pass to the credit use cases, before anything is read or written."""

from __future__ import annotations

from datetime import datetime

from creditflow.kit.credits import Credits
from creditflow.kit.errors import InvalidRequest

MAX_REFERENCE = 255
MAX_TTL_SECONDS = 30 * 24 * 3600


def positive_amount(value: object, field: str = "amount") -> Credits:
    amount = Credits.parse(value, field)
    if not amount:
        raise InvalidRequest(f"{field} must be more than 0", param=field)
    return amount


def amount_or_zero(value: object, field: str = "amount") -> Credits:
    return Credits.parse(value, field)


def reference(value: object, field: str = "reference") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} is required: the host app's id for this job", param=field)
    if len(value) > MAX_REFERENCE:
        raise InvalidRequest(f"{field} is longer than {MAX_REFERENCE} characters", param=field)
    return value


def optional_reference(value: object, field: str = "reference") -> str | None:
    return None if value is None else reference(value, field)


def text(value: object, field: str, *, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{field} is required", param=field)
    if len(value) > max_length:
        raise InvalidRequest(f"{field} is longer than {max_length} characters", param=field)
    return value.strip()


def ttl_seconds(value: object, field: str = "ttl_seconds") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{field} must be a whole number of seconds", param=field)
    if not 1 <= value <= MAX_TTL_SECONDS:
        raise InvalidRequest(f"{field} must be between 1 and {MAX_TTL_SECONDS}", param=field)
    return value


def aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequest(f"{field} must be a timezone-aware instant", param=field)
    return value


def identifier(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{field} is required", param=field)
    return value
