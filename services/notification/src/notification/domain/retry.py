"""Retry schedule and the outcome of one delivery attempt. Pure: no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # dead: gave up after the last attempt
    CANCELLED = "cancelled"  # the endpoint was disabled before delivery


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter".

    The n-th retry (after attempt n failed) waits a uniformly random time in
    [ceiling/2, ceiling] where ceiling = min(cap, base * 2**(n-1)): receivers that
    failed together do not all come back at the same instant, yet the wait still grows.
    """

    base_s: float
    cap_s: float
    max_attempts: int

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("retry policy needs 0 < base <= cap")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def ceiling(self, attempt: int) -> float:
        if attempt < 1:
            raise ValueError("attempts are numbered from 1")
        exponent = min(attempt - 1, 64)  # clamp: 2.0**1100 overflows a float
        return min(self.cap_s, self.base_s * 2.0**exponent)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def is_success(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


@dataclass(frozen=True)
class Decision:
    status: DeliveryStatus
    next_attempt_at: datetime | None


def decide(
    policy: RetryPolicy,
    attempt: int,
    status_code: int | None,
    now: datetime,
    rng: random.Random | None = None,
) -> Decision:
    """What happens to a delivery after attempt `attempt` got `status_code` (None: no answer)."""
    if is_success(status_code):
        return Decision(DeliveryStatus.DELIVERED, None)
    if attempt >= policy.max_attempts:
        return Decision(DeliveryStatus.FAILED, None)
    return Decision(DeliveryStatus.PENDING, now + timedelta(seconds=policy.delay(attempt, rng)))


def next_attempt_at(
    policy: RetryPolicy, attempt: int, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When to try again after failed attempt `attempt`; None when that was the last one."""
    if attempt >= policy.max_attempts:
        return None
    return now + timedelta(seconds=policy.delay(attempt, rng))
