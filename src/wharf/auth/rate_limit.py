"""In-process rate limiting for the token endpoint: a token bucket per key (client id, remote address).

Each key has a bucket of ``burst`` tokens refilled at ``rate_per_s``; an attempt takes one.
The token endpoint checks both the client id and the remote address, so neither guessing one
client's secret nor spraying many client ids from one address gets far. Buckets live in one
process (each server worker limits on its own) and at most ``max_keys`` are kept: the least
recently used are forgotten first, so a flood of distinct keys cannot exhaust memory.

>>> limiter = TokenBucketLimiter(rate_per_s=1, burst=2, clock=lambda: 0.0)
>>> [limiter.try_acquire("10.0.0.1") for _ in range(3)]
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from wharf.errors import RateLimited


class TokenBucketLimiter:
    """Token buckets keyed by string; thread-safe. ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(
        self,
        rate_per_s: float = 1.0,
        burst: int = 10,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, as of time)
        self._lock = threading.Lock()

    def try_acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if allowed, else the seconds until one is available (nothing taken)."""
        now = self._clock()
        with self._lock:
            tokens, since = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - since) * self.rate_per_s)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate_per_s
            self._buckets[key] = (tokens, now)  # most recently used last
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def acquire(self, *keys: str) -> None:
        """Take a token for every key, or raise ``RateLimited`` (with ``retry_after_s``) naming none of them."""
        waits = [self.try_acquire(key) for key in keys]
        wait = max(waits, default=0.0)
        if wait > 0:
            raise RateLimited("too many requests", retry_after_s=wait, hint=f"retry after {wait:.1f} s")

    def reset(self, key: str) -> None:
        """Forget ``key``'s bucket (e.g. after an operator unblocks a client)."""
        with self._lock:
            self._buckets.pop(key, None)
