"""The token endpoint's rate limiter: token buckets per key, on an injected monotonic clock."""

from __future__ import annotations

import pytest

from wharf.auth import TokenBucketLimiter
from wharf.errors import RateLimited

from .conftest import FakeClock


def test_a_burst_is_allowed_then_refused_until_tokens_refill() -> None:
    clock = FakeClock(0.0)
    limiter = TokenBucketLimiter(rate_per_s=2, burst=3, clock=clock)
    assert [limiter.try_acquire("client-a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("client-a") == pytest.approx(0.5)
    assert limiter.try_acquire("client-a") == pytest.approx(0.5)  # a refused attempt takes nothing
    clock.advance(0.5)
    assert limiter.try_acquire("client-a") == 0.0
    assert limiter.try_acquire("client-a") == pytest.approx(0.5)
    clock.advance(100)  # refills up to the burst, not beyond
    assert [limiter.try_acquire("client-a") for _ in range(4)][-1] == pytest.approx(0.5)


def test_keys_are_limited_independently_and_acquire_checks_every_key() -> None:
    clock = FakeClock(0.0)
    limiter = TokenBucketLimiter(rate_per_s=1, burst=1, clock=clock)
    limiter.acquire("client:a", "addr:10.0.0.1")
    limiter.acquire("client:b", "addr:10.0.0.2")
    with pytest.raises(RateLimited) as exc:
        limiter.acquire("client:c", "addr:10.0.0.1")  # a fresh client id from an exhausted address
    assert exc.value.status == 429 and exc.value.retry_after_s == pytest.approx(1.0)
    assert "10.0.0.1" not in str(exc.value)
    limiter.reset("addr:10.0.0.1")
    limiter.acquire("client:d", "addr:10.0.0.1")


def test_memory_is_bounded_by_forgetting_the_least_recently_used_keys() -> None:
    clock = FakeClock(0.0)
    limiter = TokenBucketLimiter(rate_per_s=1, burst=1, max_keys=2, clock=clock)
    limiter.try_acquire("a")
    limiter.try_acquire("b")
    assert limiter.try_acquire("a") > 0  # a is exhausted, and now the most recently used
    limiter.try_acquire("c")  # evicts b
    assert limiter.try_acquire("a") > 0
    assert limiter.try_acquire("b") == 0.0  # forgotten: starts with a full bucket
    with pytest.raises(ValueError):
        TokenBucketLimiter(rate_per_s=0)
