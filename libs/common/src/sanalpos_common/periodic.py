"""A job that runs one pass, then waits `interval_s` (or until stopped), and reports ready
while its passes keep coming: the loop under the daily and periodic jobs of the services."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field


@dataclass
class PeriodicJob:
    """Subclasses (dataclasses) define `interval_s` and `run_once`."""

    _stop: asyncio.Event = field(default_factory=asyncio.Event, kw_only=True, repr=False)
    _started: float = field(default_factory=time.monotonic, kw_only=True, repr=False)
    _last_pass: float | None = field(default=None, kw_only=True, repr=False)

    def _interval_s(self) -> float:
        # Each subclass's own field (in its own place among its arguments): a field declared
        # here would come first and force a default on every argument after it.
        interval: float = self.__dict__["interval_s"]
        return interval

    async def run_once(self) -> object:
        raise NotImplementedError

    async def run(self) -> None:
        while not self._stop.is_set():
            await self.run_once()
            self._last_pass = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval_s())

    def stop(self) -> None:
        self._stop.set()

    async def readiness(self) -> tuple[bool, str]:
        allowed = max(120.0, 3 * self._interval_s())
        since = time.monotonic() - (self._last_pass or self._started)
        if self._last_pass is None:
            return since < allowed, "no pass yet"
        return since < allowed, f"last pass {since:.0f}s ago"
