"""Per-card velocity counts kept in a faust hopping-window table, in event time.

Why the table is read the way it is: for a hopping window (size S, step T) faust keeps one
counter per window, and every payment increments the S/T windows that contain its time.
`WindowSet.value()` / `.current()` answer with the *latest* window containing the time,
which only started at the current step, so it would see nothing older than one step. The
count we want is the trailing S seconds, i.e. the *earliest* window containing the
payment's time, which covers [t - S + T, t + T) rounded to steps (between S - T and S
seconds of history). faust exposes that window as `window.earliest(t)`, and the table is
a plain mapping of `(key, window_range)` to the counter, so that is what `count` reads.

Writes go through faust's windowed API (`relative_to(t)[key] += 1`), which updates every
window containing `t` and sends each change to the table's changelog topic, on the
partition of the event being processed: the stream must be partitioned by the same key
as the table (see adapters/stream.py, group_by fingerprint).
"""

from __future__ import annotations

from typing import Any


class VelocityWindow:
    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper
        self._table = wrapper.table
        self._window = wrapper.table.window

    @property
    def name(self) -> str:
        return str(self._table.name)

    def count(self, key: str, at: float) -> int:
        """Payments counted for `key` in the trailing window that ends at `at`."""
        return int(self._table.get((key, self._window.earliest(at)), 0))

    def add(self, key: str, at: float) -> None:
        """Count one payment at event time `at` (must run inside the stream iteration)."""
        windows = self._wrapper.relative_to(at)
        windows[key] += 1
