"""The API's token buckets: the limit per key, and a memory bound whatever the traffic."""

from __future__ import annotations

import pytest

from creditflow.api.gate import TokenBuckets


def test_a_key_gets_its_burst_then_waits_for_tokens():
    buckets = TokenBuckets(rate=10.0, burst=3.0)

    assert [buckets.take("key_a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("key_a", now=100.0) == pytest.approx(0.1)
    assert buckets.take("key_b", now=100.0) == 0.0  # another key has its own bucket
    assert buckets.take("key_a", now=100.2) == 0.0  # two tokens back after 0.2 s


def test_many_keys_at_once_leave_at_most_max_keys():
    buckets = TokenBuckets(rate=1000.0, burst=1000.0, max_keys=500)

    for n in range(100_000):
        buckets.take(f"key_{n}", now=50.0)

    assert len(buckets) == 500


def test_buckets_full_again_are_forgotten():
    """A bucket untouched for burst / rate seconds is full: keeping it would only grow memory."""
    buckets = TokenBuckets(rate=10.0, burst=5.0)
    for n in range(1_000):
        buckets.take(f"key_{n}", now=0.0)

    buckets.take("key_last", now=0.5 + 0.001)

    assert len(buckets) == 1


def test_a_busy_key_is_kept_and_still_limited_among_many():
    buckets = TokenBuckets(rate=1.0, burst=2.0, max_keys=100)
    assert buckets.take("busy", now=0.0) == 0.0
    assert buckets.take("busy", now=0.0) == 0.0
    for n in range(1_000):  # others come and go within the same second
        buckets.take(f"key_{n}", now=0.5)
        if n % 50 == 0:
            assert buckets.take("busy", now=0.5) > 0  # recently used: kept, and empty

    assert len(buckets) == 100
