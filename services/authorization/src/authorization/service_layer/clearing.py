"""The daily clearing file (authorization.clearing-reported.v1), like an acquirer's: every
capture, void after capture and refund executed on a calendar day (the clearing time zone),
per merchant and currency, through the outbox.

The loop publishes each finished day once, `settle_s` after its midnight (so transactions
still in flight at midnight have committed), catching up on the last `lookback_days` after
downtime. An operator re-runs a day on demand (admin API): the new version replaces the old.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from authorization.adapters.clearing_repository import ClearingRepository
from authorization.domain.clearing import clearing_file, day_bounds
from sanalpos_common.db import unit_of_work
from sanalpos_common.periodic import PeriodicJob
from sanalpos_common.schemas.events import ClearingReported

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PublishedFile:
    merchant_id: str
    currency: str
    clearing_date: date
    version: int
    parts: int
    lines: int


@dataclass
class ClearingJob(PeriodicJob):
    pool: asyncpg.Pool
    producer: str
    time_zone: str = "Europe/Istanbul"
    interval_s: float = 300.0
    settle_s: float = 600.0
    lookback_days: int = 7
    clock: Callable[[], datetime] = _utc_now

    def today(self) -> date:
        return self.clock().astimezone(ZoneInfo(self.time_zone)).date()

    async def publish(
        self, day: date, merchant_id: str | None = None, *, only_new: bool = False
    ) -> list[PublishedFile]:
        """One file per merchant and currency with operations on `day`; with `only_new`,
        those not published yet (the loop), else a new version of each (on demand)."""
        start, end = day_bounds(day, self.time_zone)
        async with self.pool.acquire() as conn:
            repository = ClearingRepository(conn)
            pairs = await repository.pairs(start, end, merchant_id)
            done = await repository.published([day]) if only_new else set()
        published = []
        for merchant, currency in pairs:
            if (merchant, currency, day) in done:
                continue
            async with unit_of_work(self.pool, self.producer) as uow:
                repository = ClearingRepository(uow.conn)
                lines = await repository.lines(merchant, currency, start, end)
                now = self.clock()
                version = await repository.next_version(merchant, currency, day, len(lines), now)
                parts: list[ClearingReported] = clearing_file(
                    merchant, currency, day, version, lines, now
                )
                await uow.emit_all(parts)
            published.append(
                PublishedFile(merchant, currency, day, version, len(parts), len(lines))
            )
            log.info(
                "clearing file %s %s %s v%d: %d lines in %d parts",
                merchant,
                currency,
                day,
                version,
                len(lines),
                len(parts),
            )
        return published

    async def publish_due(self) -> list[PublishedFile]:
        """Every finished day of the look-back window not published yet."""
        now = self.clock()
        today = self.today()
        published = []
        for back in range(self.lookback_days, 0, -1):
            day = today - timedelta(days=back)
            if now < day_bounds(day, self.time_zone)[1] + timedelta(seconds=self.settle_s):
                continue
            published += await self.publish(day, only_new=True)
        return published

    async def run_once(self) -> object:
        return await self.publish_due()
