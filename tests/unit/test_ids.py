"""Ids: type-prefixed, 26 Crockford base32 characters, sorted by creation time."""

import os
import time
from datetime import datetime, timezone

from creditflow.kit import ids


def test_new_id_spells_the_millisecond_then_80_random_bits(monkeypatch):
    for _ in range(500):
        millis, random_bytes = time.time_ns() // 1_000_000, os.urandom(10)
        monkeypatch.setattr(ids.time, "time_ns", lambda: millis * 1_000_000 + 999_999)
        monkeypatch.setattr(ids.os, "urandom", lambda n: random_bytes)
        expected = f"cre_{ids._b32(millis, 10)}{ids._b32(int.from_bytes(random_bytes, 'big'), 16)}"
        assert ids.new_id("cre") == expected


def test_ids_made_later_sort_later(monkeypatch):
    made = []
    for millis in (1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000):
        monkeypatch.setattr(ids.time, "time_ns", lambda m=millis: m * 1_000_000)
        made.append(ids.new_id("spd"))
    assert made == sorted(made) and len({m[4:14] for m in made}) == 3
    assert all(len(m) == 4 + 26 and set(m[4:]) <= set(ids._ALPHABET) for m in made)


def test_made_at_reads_the_millisecond_back(monkeypatch):
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_764_000_123_456 * 1_000_000 + 999)
    made = datetime.fromtimestamp(1_764_000_123.456, tz=timezone.utc)
    assert ids.made_at(ids.new_id("cre")) == made
    assert ids.made_at(ids.derived_id("lot", made, "cus_1", "2025-11-24")) == made
    spend = ids.new_id("spd")
    assert ids.made_at("cre_" + spend[4:29] + "3") == made  # a spend's entries are named after it


def test_made_at_of_something_else_is_none():
    for text in ("", "cre", "cre_", "cre_01J", "e5123_3", "cre_01JZZZZZZU", "nounderscore0123456789",
                 "cre_ZZZZZZZZZZ0000000000000000"):
        assert ids.made_at(text) is None, text
