"""Per-key token buckets: `rate` requests per second, bursts up to one second's worth."""

from __future__ import annotations

import math
import time


class TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self, now: float | None = None) -> float:
        """0 when a request may go ahead, else the seconds until one may."""
        current = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (current - self.updated) * self.rate)
        self.updated = current
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """One bucket per key id; a key whose rate changed in keys.json gets a new bucket."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def retry_after(self, key_id: str, rate: float) -> int:
        """0 when the request may go ahead, else whole seconds to wait (for Retry-After)."""
        bucket = self._buckets.get(key_id)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[key_id] = TokenBucket(rate)
        wait = bucket.take()
        return 0 if wait == 0 else max(1, math.ceil(wait))
