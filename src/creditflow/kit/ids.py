"""Opaque, type-prefixed, time-sortable ids (`cus_01J...`), so `starting_after` pages in order."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


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
