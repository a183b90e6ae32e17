"""Token buckets per API key. Pure: the caller passes the clock (monotonic seconds)."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    per_second: float
    """Sustained rate; 0 or less means no limit."""
    burst: int
    """Bucket size: how many requests may arrive at once after a quiet spell."""

    @property
    def unlimited(self) -> bool:
        return self.per_second <= 0


class TokenBucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, limit: Limit, now: float) -> None:
        self.tokens = float(limit.burst)
        self.updated = now

    def take(self, limit: Limit, now: float) -> float:
        """Spends one token; returns 0 when allowed, else the seconds until one is available."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(limit.burst), self.tokens + elapsed * limit.per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / limit.per_second


def retry_after_seconds(wait: float) -> int:
    """Retry-After is whole seconds (RFC 9110); never 0 for a refused request."""
    return max(1, math.ceil(wait))


class RateLimiter:
    """One bucket per key, in this process. The least recently used buckets are dropped past
    `max_keys` (a dropped key starts again with a full bucket)."""

    def __init__(self, default: Limit, max_keys: int = 100_000) -> None:
        self.default = default
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def check(self, key: str, now: float, limit: Limit | None = None) -> int | None:
        """None when the request may go ahead, else Retry-After in whole seconds."""
        limit = limit or self.default
        if limit.unlimited:
            return None
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(limit, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        wait = bucket.take(limit, now)
        return None if wait == 0.0 else retry_after_seconds(wait)
