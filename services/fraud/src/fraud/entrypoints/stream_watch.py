"""Watches the faust stream's consumer group: /readyz's verdict and the stall watchdog.

Both judge from the group's committed offsets and lag (adapters/lag.py), taken at most
every `lag_probe_cache_s`, and only on the partitions this member owns.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.types import TP as FaustTP

from fraud.adapters.lag import GroupLagProbe, LagSnapshot
from fraud.config import FraudSettings
from fraud.entrypoints.stream_progress import StreamProgress
from fraud.entrypoints.stream_topology import METRICS_CONSUMER
from sanalpos_common.observability import Metrics

log = logging.getLogger(__name__)


class StreamWatch:
    def __init__(
        self,
        settings: FraudSettings,
        metrics: Metrics,
        progress: StreamProgress,
        probe: GroupLagProbe,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.progress = progress
        self.probe = probe
        self._lag: LagSnapshot | None = None
        self._committed: dict[TopicPartition, int | None] = {}
        self._committed_changed: dict[TopicPartition, float] = {}
        self._heal_seen: dict[TopicPartition, tuple[int, float]] = {}

    # -------------------------------------------------------------------- readiness
    async def readiness(self, app: faust.App | None) -> tuple[bool, str]:
        p = self.progress
        if app is None or p.started_monotonic is None:
            return False, "faust app not started"
        if app.crashed:
            return False, f"faust app crashed: {app.crash_reason!r}"
        if p.ready_monotonic is None:
            age = time.monotonic() - p.started_monotonic
            return False, f"faust starting / recovering tables for {age:.1f}s"
        snapshot = await self.lag_snapshot()
        # Judge only the partitions this member owns: with several replicas, another
        # member's progress must not hide this one being wedged.
        assigned = _assigned(app)
        mine = [tp for tp in snapshot.lag if tuple(tp) in assigned] or list(snapshot.lag)
        self._export_lag(snapshot, mine)
        stalled = self._stalled(snapshot, mine, p.ready_monotonic)
        detail = self._detail(app, snapshot, sum(snapshot.lag[tp] for tp in mine), len(assigned))
        if stalled:
            return False, f"stalled: no offset progress on {', '.join(stalled)}; {detail}"
        if sum(snapshot.lag[tp] for tp in mine) == 0:
            return True, f"caught up; {detail}"
        return True, f"consuming; {detail}"

    def _stalled(
        self, snapshot: LagSnapshot, mine: list[TopicPartition], ready_monotonic: float
    ) -> list[str]:
        """Partitions with lag whose committed offset has not moved for `stall_after_s`."""
        now = time.monotonic()
        stalled = []
        for tp in mine:
            committed = snapshot.committed.get(tp)
            if tp not in self._committed or self._committed[tp] != committed:
                self._committed[tp] = committed
                self._committed_changed[tp] = now
            idle = now - max(self._committed_changed[tp], ready_monotonic)
            if snapshot.lag[tp] > 0 and idle >= self.settings.stall_after_s:
                stalled.append(f"{tp.topic}[{tp.partition}] lag {snapshot.lag[tp]} for {idle:.0f}s")
        return stalled

    def _detail(self, app: faust.App, snapshot: LagSnapshot, my_lag: int, assigned: int) -> str:
        p = self.progress
        now = time.monotonic()
        since_event = (
            f"{now - p.last_processed_monotonic:.1f}s ago"
            if p.last_processed_monotonic is not None
            else "never"
        )
        return (
            f"lag {my_lag} (group {snapshot.total()}), processed {p.processed} (last "
            f"{since_event}, event time "
            f"{p.last_event_time.isoformat() if p.last_event_time else '-'}), "
            f"batches {p.batches}, dead-lettered {p.dead_lettered}, assigned "
            f"{assigned} partitions"
            f"{', rebalancing' if app.rebalancing else ''}"
        )

    # --------------------------------------------------------------- stall watchdog
    async def heal_stalled_partitions(self, app: faust.App | None) -> None:
        """Seek a partition back to its committed offset when it has lag and its committed
        offset has not moved for `heal_after_s` while nothing is in flight: faust dropped
        fetched records in memory (see ack_guard.py), and nothing else would fetch them again.
        Redelivered messages that were already handled are duplicates for the inbox."""
        p = self.progress
        if app is None or p.ready_monotonic is None or app.rebalancing or p.in_flight_since:
            return
        try:
            snapshot = await self.lag_snapshot()
            assigned = _assigned(app)
        except Exception as exc:  # the probe reconnects next time; healing can wait
            log.debug("stall check skipped: %s", type(exc).__name__)
            return
        now = time.monotonic()
        for tp, lag in snapshot.lag.items():
            committed = snapshot.position.get(tp)  # log start when the group never committed
            if lag <= 0 or committed is None or tuple(tp) not in assigned:
                self._heal_seen.pop(tp, None)
                continue
            seen = self._heal_seen.get(tp)
            if seen is None or seen[0] != committed:
                self._heal_seen[tp] = (committed, now)
                continue
            if now - seen[1] < self.settings.heal_after_s:
                continue
            log.warning(
                "%s[%d]: lag %d and no progress for %.0fs; seeking back to committed offset %d",
                tp.topic,
                tp.partition,
                lag,
                now - seen[1],
                committed,
            )
            await app.consumer.seek(FaustTP(tp.topic, tp.partition), committed)
            self._heal_seen[tp] = (committed, now)

    async def sample_lag(self, app: faust.App | None) -> None:
        """Scrape-time lag gauges: the partitions this member owns (every member exporting
        the whole group's lag would count it once per replica)."""
        if app is None or self.progress.ready_monotonic is None:
            return
        snapshot = await self.lag_snapshot()
        assigned = _assigned(app)
        self._export_lag(snapshot, [tp for tp in snapshot.lag if tuple(tp) in assigned])

    def _export_lag(self, snapshot: LagSnapshot, mine: list[TopicPartition]) -> None:
        self.metrics.set_lag(
            METRICS_CONSUMER, {(tp.topic, tp.partition): snapshot.lag[tp] for tp in mine}
        )

    async def lag_snapshot(self) -> LagSnapshot:
        cached = self._lag
        if cached and time.monotonic() - cached.taken_monotonic < self.settings.lag_probe_cache_s:
            return cached
        self._lag = await self.probe.snapshot()
        return self._lag

    async def close(self) -> None:
        await self.probe.close()


def _assigned(app: Any) -> set[tuple[Any, ...]]:
    return {tuple(tp) for tp in app.consumer.assignment()}
