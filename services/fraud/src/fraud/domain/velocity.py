"""Per-card velocity counts as step buckets kept inside one value. Pure: no I/O, no clock.

What is counted is exactly what faust's hopping windows (size S, step T) counted before: a
payment at time t lies in bucket floor(t / T), and "payments in the trailing window at t"
is the sum of the S/T buckets ending with t's own bucket (the earliest hopping window
containing t covers the same steps), so between S - T and S seconds of history. Later
buckets (an out-of-order payment scored after newer ones) are not summed.

Storage is a short sorted list of [bucket, count] pairs per window, so one table value (the
card's feature value, see fraud.adapters.velocity) holds both windows and a payment costs
one changelog write whatever the number of windows. It stays bounded:

- buckets within the retention (2 x S, what the hopping tables kept as `expires`) of the
  newest bucket are kept, so a payment up to S late still sees its whole window;
- around the bucket just written, the same retention is kept on both sides, so a burst of
  much older payments (a replay, a stuck producer) counts among itself like it did in the
  hopping windows, until a newer payment of the card moves on;
- everything else is dropped, so a list never holds more than 3 x (2 x S / T) + 2 buckets
  (2 x S / T + 1 in order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Buckets = list[list[int]]
"""Sorted [[bucket, count], ...]; bucket = floor(event time / step)."""


@dataclass(frozen=True)
class WindowSpec:
    name: str
    size_s: int
    step_s: int

    def __post_init__(self) -> None:
        if self.step_s <= 0 or self.size_s < self.step_s or self.size_s % self.step_s:
            raise ValueError(f"window {self.name}: the step must divide the size")

    @property
    def span(self) -> int:
        """Buckets summed for one count (S / T)."""
        return self.size_s // self.step_s

    @property
    def retention(self) -> int:
        """Buckets kept behind the newest one (2 x S / T)."""
        return 2 * self.span

    @property
    def max_buckets(self) -> int:
        return 3 * self.retention + 2

    def bucket(self, t: float) -> int:
        return math.floor(t / self.step_s)


def count(buckets: Sequence[Sequence[int]], spec: WindowSpec, t: float) -> int:
    """Payments stored in the trailing window that ends with t's bucket."""
    current = spec.bucket(t)
    first = current - spec.span + 1
    return sum(int(c) for b, c in buckets if first <= int(b) <= current)


def add(buckets: Sequence[Sequence[int]], spec: WindowSpec, t: float, n: int = 1) -> Buckets:
    """`buckets` with n payments at t counted, pruned as the module docstring says."""
    written = spec.bucket(t)
    counts: dict[int, int] = {int(b): int(c) for b, c in buckets}
    counts[written] = counts.get(written, 0) + n
    newest = max(counts)
    keep = spec.retention
    return [
        [b, c]
        for b, c in sorted(counts.items())
        if b >= newest - keep or written - keep <= b <= written + keep
    ]


@dataclass(frozen=True)
class VelocitySpec:
    """The two card windows of the rules (10 min and 1 h by default)."""

    short: WindowSpec
    long: WindowSpec

    @classmethod
    def of(cls, short_s: int, short_step_s: int, long_s: int, long_step_s: int) -> VelocitySpec:
        return cls(WindowSpec("10m", short_s, short_step_s), WindowSpec("1h", long_s, long_step_s))

    def windows(self) -> tuple[WindowSpec, WindowSpec]:
        return (self.short, self.long)


DEFAULT_SPEC = VelocitySpec.of(600, 120, 3600, 600)


def stored_counts(state: Mapping[str, Any] | None, spec: VelocitySpec, t: float) -> tuple[int, int]:
    """(short, long) counts stored in a card's velocity state (`{"10m": [...], "1h": [...]}`)."""
    state = state or {}
    short, long_ = (count(state.get(w.name, ()), w, t) for w in spec.windows())
    return short, long_


def counted(state: Mapping[str, Any] | None, spec: VelocitySpec, t: float) -> dict[str, Buckets]:
    """A card's velocity state with one more payment at t."""
    state = state or {}
    return {w.name: add(state.get(w.name, ()), w, t) for w in spec.windows()}
