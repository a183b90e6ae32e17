"""Per-card velocity counts in event time, kept inside the card's feature-table value.

Semantics (unchanged from the faust hopping windows they replace): for a hopping window
(size S, step T) every payment counts in the S/T windows that contain its time, and the
count we want is the trailing S seconds, i.e. the *earliest* window containing the
payment's time, which covers [t - S + T, t + T) rounded to steps (between S - T and S
seconds of history). faust's `HoppingWindow` does the arithmetic (`ranges`, `earliest`).

Storage: not one faust windowed table per window (one changelog record per window per
payment: 11 for the 10 min / 1 h pair), but the counts of both windows as a small map
`{"v": {"short": {"<window start>": n, ...}, "long": {...}}}` inside the card's value of the
feature table (`card|<fingerprint>`, fraud.domain.features), which is written for the
payment anyway. A payment therefore adds no changelog record of its own for velocity.
Windows past their expiry (twice their size behind the newest payment) are dropped, so a
value stays small. Counts go through the batch overlay (`BatchFeatures`) like the features:
a later payment of the batch sees the earlier ones, nothing is durable before the batch's
database commit (`apply`), and a retried batch starts from a fresh overlay.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import faust
from faust.windows import HoppingWindow

from fraud.adapters.feature_table import BatchFeatures
from fraud.domain.features import Observation, card_key
from fraud.domain.scoring import Velocity

WindowRange = tuple[float, float]
VELOCITY_FIELD = "v"


class PartitionedTable(faust.Table):
    """A faust Table whose changelog partition can be pinned for a block of writes."""

    _explicit_partition: int | None = None

    @contextmanager
    def writing_to(self, partition: int) -> Iterator[None]:
        previous, self._explicit_partition = self._explicit_partition, partition
        try:
            yield
        finally:
            self._explicit_partition = previous

    def partition_for_key(self, key: Any) -> int | None:
        if self._explicit_partition is not None:
            return self._explicit_partition
        return super().partition_for_key(key)


class CardValues(Protocol):
    """Where a card's value is read from: the feature table or a batch overlay."""

    def get(self, key: str, /) -> Mapping[str, Any] | None: ...


class VelocityWindow:
    """One hopping window (e.g. "card, trailing 10 minutes"): pure window arithmetic plus
    where its counts sit inside a card's value."""

    def __init__(self, name: str, size_s: int, step_s: int) -> None:
        self.name = name
        self.size_s = size_s
        self._window = HoppingWindow(size_s, step_s, expires=2 * size_s)

    def trailing(self, at: float) -> WindowRange:
        """The window whose count is "payments in the trailing window ending at `at`"."""
        return tuple(self._window.earliest(at))  # type: ignore[return-value]

    def ranges(self, at: float) -> list[WindowRange]:
        """Every window a payment at `at` is counted in."""
        return [tuple(r) for r in self._window.ranges(at)]  # type: ignore[misc]

    def counts_in(self, value: Mapping[str, Any] | None) -> Mapping[str, int]:
        return ((value or {}).get(VELOCITY_FIELD) or {}).get(self.name) or {}

    def count(self, values: CardValues, fingerprint: str, at: float) -> int:
        """Payments counted for the card in the trailing window that ends at `at`."""
        counts = self.counts_in(values.get(card_key(fingerprint)))
        return int(counts.get(_start(self.trailing(at)), 0))

    def added(self, counts: Mapping[str, int], at: float) -> dict[str, int]:
        """`counts` with one more payment at `at`, windows past their expiry dropped."""
        oldest = at - 2 * self.size_s
        kept = {start: n for start, n in counts.items() if float(start) >= oldest}
        for window_range in self.ranges(at):
            start = _start(window_range)
            kept[start] = int(kept.get(start, 0)) + 1
        return kept


def _start(window_range: WindowRange) -> str:
    return str(int(window_range[0]))  # whole seconds: steps are whole seconds


@dataclass
class BatchVelocity:
    """Velocity and streaming features for the payments of one batch, in order, before any
    of it is committed; `apply` writes every touched card's value once."""

    short: VelocityWindow
    long: VelocityWindow
    streaming: BatchFeatures

    def velocity(self, fingerprint: str, at: float) -> Velocity:
        """Counts in both trailing windows, this payment included."""
        return Velocity(
            card_10m=self.short.count(self.streaming, fingerprint, at) + 1,
            card_1h=self.long.count(self.streaming, fingerprint, at) + 1,
        )

    def count(self, fingerprint: str, at: float, partition: int) -> None:
        key = card_key(fingerprint)
        value = dict(self.streaming.get(key) or {})
        windows = dict(value.get(VELOCITY_FIELD) or {})
        for window in (self.short, self.long):
            windows[window.name] = window.added(window.counts_in(value), at)
        value[VELOCITY_FIELD] = windows
        self.streaming.put(key, value, partition)

    def features(self, obs: Observation, partition: int) -> dict[str, float]:
        """Streaming features of this payment (earlier payments only), then count it."""
        return self.streaming.features(obs, partition)

    def apply(self) -> int:
        """Write the batch's card values; returns how many keys were written."""
        return self.streaming.apply()
