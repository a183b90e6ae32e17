"""Per-card velocity counts kept in faust hopping-window tables, in event time.

How the tables are read: for a hopping window (size S, step T) faust keeps one counter per
window, and every payment increments the S/T windows that contain its time.
`WindowSet.value()` / `.current()` answer with the *latest* window containing the time,
which only started at the current step, so it would see nothing older than one step. The
count we want is the trailing S seconds, i.e. the *earliest* window containing the
payment's time, which covers [t - S + T, t + T) rounded to steps (between S - T and S
seconds of history). faust exposes that window as `window.earliest(t)`, and a windowed
table is a mapping of `(key, window_range)` to the counter, so that is what is read.

How they are written: exactly what faust's `table[key] += 1` does for a windowed table
(`Table._apply_window_op`: one write per window in `window.ranges(t)`), but with the
increments of a whole batch summed per key first, and with the changelog partition
given explicitly (`PartitionedTable`): the writes happen after the batch's database
commit, when faust's "current event" is no longer the event that caused them. The
partition is the by-card repartition partition the event came from, so changelog
partition p holds exactly the cards of stream partition p (co-partitioning; faust
recovers table partition p on whichever worker is assigned stream partition p).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import faust

from fraud.adapters.feature_table import BatchFeatures
from fraud.domain.features import Observation
from fraud.domain.scoring import Velocity

WindowRange = tuple[float, float]


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


class VelocityWindow:
    """One windowed table (e.g. "card, trailing 10 minutes")."""

    def __init__(self, wrapper: Any) -> None:
        self._table = wrapper.table
        self._window = wrapper.table.window

    @property
    def name(self) -> str:
        return str(self._table.name)

    def trailing(self, at: float) -> WindowRange:
        """The window whose count is "payments in the trailing window ending at `at`"."""
        return tuple(self._window.earliest(at))

    def ranges(self, at: float) -> list[WindowRange]:
        """Every window a payment at `at` is counted in."""
        return [tuple(r) for r in self._window.ranges(at)]

    def stored(self, key: str, window: WindowRange) -> int:
        return int(self._table.get((key, window), 0))

    def count(self, key: str, at: float) -> int:
        """Payments counted for `key` in the trailing window that ends at `at`."""
        return self.stored(key, self.trailing(at))

    def add(self, increments: dict[tuple[str, WindowRange], int], partition: int) -> None:
        """Apply summed increments; the changelog writes go to `partition`."""
        table = self._table
        writing_to = getattr(table, "writing_to", None)
        if writing_to is None:
            raise TypeError("velocity tables must be PartitionedTable (App(Table=...))")
        with writing_to(partition):
            for key, increment in increments.items():
                table[key] = table.get(key, 0) + increment


@dataclass
class BatchVelocity:
    """Velocity for the payments of one batch, in order, before any of it is committed.

    Each counted payment is added to a pending overlay, so a later payment of the same
    card in the same batch sees it; `apply` writes the overlay to the tables once the
    batch's database transaction has committed. A batch that must be retried starts
    over with a fresh BatchVelocity, so nothing is counted twice.
    """

    short: VelocityWindow
    long: VelocityWindow
    streaming: BatchFeatures | None = None
    """The model's streaming features (fraud.domain.features), applied together with the counts."""
    _pending: dict[tuple[int, str, WindowRange], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    _partitions: dict[str, int] = field(default_factory=dict)

    def _windows(self) -> tuple[tuple[int, VelocityWindow], ...]:
        return ((0, self.short), (1, self.long))

    def velocity(self, fingerprint: str, at: float) -> Velocity:
        """Counts in both trailing windows, this payment included."""
        counts = [
            window.stored(fingerprint, trailing)
            + self._pending.get((index, fingerprint, trailing), 0)
            + 1
            for index, window in self._windows()
            for trailing in (window.trailing(at),)
        ]
        return Velocity(card_10m=counts[0], card_1h=counts[1])

    def count(self, fingerprint: str, at: float, partition: int) -> None:
        for index, window in self._windows():
            for window_range in window.ranges(at):
                self._pending[(index, fingerprint, window_range)] += 1
        self._partitions[fingerprint] = partition

    def features(self, obs: Observation, partition: int) -> dict[str, float]:
        """Streaming features of this payment (earlier payments only), then count it."""
        if self.streaming is None:
            raise RuntimeError("no feature table: BatchVelocity(..., streaming=BatchFeatures(...))")
        return self.streaming.features(obs, partition)

    def apply(self) -> int:
        """Write the pending counts to the tables; returns how many keys were written."""
        if self.streaming is not None:
            self.streaming.apply()
        grouped: dict[tuple[int, int], dict[tuple[str, WindowRange], int]] = defaultdict(dict)
        for (index, fingerprint, window_range), increment in self._pending.items():
            grouped[(index, self._partitions[fingerprint])][(fingerprint, window_range)] = increment
        windows = dict(self._windows())
        for (index, partition), increments in grouped.items():
            windows[index].add(increments, partition)
        written = len(self._pending)
        self._pending.clear()
        return written
