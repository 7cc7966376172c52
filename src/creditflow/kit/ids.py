"""Opaque, type-prefixed, time-sortable ids (`cus_01J...`), so `starting_after` pages in order."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timezone

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_VALUES = {char: value for value, char in enumerate(_ALPHABET)}


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


# Two characters per 10 bits, looked up: ids are made on every spend, and this is several
# times faster than `_b32`'s character at a time (which still spells the same id).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = range(120, -1, -10)


def new_id(prefix: str) -> str:
    """`prefix_` + 10 characters of the millisecond (time-sortable) + 16 of 80 random bits."""
    value = (time.time_ns() // 1_000_000 % (1 << 50)) << 80 | int.from_bytes(os.urandom(10), "big")
    return prefix + "_" + "".join([_PAIRS[value >> shift & 1023] for shift in _SHIFTS])


def derived_id(prefix: str, at: datetime, *names: str) -> str:
    """An id fixed in advance for something that will exist at most once (today's free credits
    of a customer): the millisecond of `at`, then 80 bits of a hash of `names`. It reads like
    `new_id`'s, so it can be shown before the thing is created and stay the same after."""
    digest = int.from_bytes(hashlib.blake2b("\x1f".join(names).encode(), digest_size=10).digest(), "big")
    value = (int(at.timestamp() * 1000) % (1 << 50)) << 80 | digest
    return prefix + "_" + "".join([_PAIRS[value >> shift & 1023] for shift in _SHIFTS])


def made_at(id_: str) -> datetime | None:
    """The millisecond an id of `new_id` or `derived_id` spells (UTC), or None for a string
    that isn't one. A hint, not a fact: it says when the id was made, which for something
    written on real time is within moments of its `created_at`."""
    _, sep, body = id_.partition("_")
    if not sep or len(body) < 10:
        return None
    millis = 0
    for char in body[:10]:
        value = _VALUES.get(char)
        if value is None:
            return None
        millis = millis * 32 + value
    try:
        return datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):  # past the year 9999: made up, not made
        return None
