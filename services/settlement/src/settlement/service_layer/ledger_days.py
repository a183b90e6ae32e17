"""The ledger-day job: recomputes each merchant's posting days from the ledger and announces
the days that changed on settlement.ledger-day.v1 (through the outbox), the source of intake's
monthly statements.

A pass looks at the postings made since its watermark, and for each merchant that has some,
recomputes every day from the earliest such posting's local date on (a posting late on a day
moves the openings of the days after it). A day whose figures are what was last announced is
not announced again; one that differs gets the next version. The watermark trails the pass by
`margin`, so a transaction that committed after a pass began, with an earlier `created_at`, is
still seen by the next one. An operator can recompute one merchant from a date (or from its
first posting) through the admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import asyncpg

from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.schemas.events import MERCHANT_NAMESPACE, LedgerDaySummarized
from settlement.adapters.ledger_days import LedgerDayRepository
from settlement.adapters.merchants import MerchantRepository
from settlement.domain.ledger_days import DaySummary, changed, figures, summarize_days

log = logging.getLogger(__name__)


def announcement(
    merchant_id: str, summary: DaySummary, zone: str, version: int, computed_at: datetime
) -> LedgerDaySummarized:
    return LedgerDaySummarized(
        merchant_id=merchant_id,
        currency=summary.currency,
        day=summary.day,
        time_zone=zone,
        version=version,
        computed_at=computed_at,
        **figures(summary),
    )


async def recompute(
    uow: UnitOfWork, merchant_id: str, from_day: date | None, now: datetime
) -> list[LedgerDaySummarized]:
    """Recomputes the merchant's days from `from_day` (its first posting's day when None),
    in the caller's transaction; returns the days announced (those that changed)."""
    days = LedgerDayRepository(uow.conn)
    await days.lock_merchant(merchant_id)
    zone = (await MerchantRepository(uow.conn).profile(merchant_id)).time_zone
    local = ZoneInfo(zone)
    if from_day is None:
        first = await days.first_posting(merchant_id)
        if first is None:
            return []
        from_day = first.astimezone(local).date()
    start = datetime.combine(from_day, clock_time.min, tzinfo=local)
    summaries = summarize_days(
        await days.openings(merchant_id, start), await days.kind_totals(merchant_id, start, zone)
    )
    stored = await days.stored(merchant_id, from_day)
    announced = []
    for summary in summaries:
        before = stored.get((summary.currency, summary.day))
        if not changed(summary, before):
            continue
        version = 1 if before is None else before["version"] + 1
        await days.save(merchant_id, summary, version, now)
        event = announcement(merchant_id, summary, zone, version, now)
        await uow.emit(event, correlation_id=uuid.uuid5(MERCHANT_NAMESPACE, merchant_id))
        announced.append(event)
    return announced


@dataclass
class LedgerDayJob:
    pool: asyncpg.Pool
    producer: str
    interval_s: float = 30.0
    margin: timedelta = timedelta(minutes=5)
    max_pass_s: float = 900.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _last_pass: float | None = None
    _pass_started: float | None = None
    _started: float = field(default_factory=time.monotonic)

    async def recompute(
        self, merchant_id: str, from_day: date | None = None
    ) -> list[LedgerDaySummarized]:
        async with unit_of_work(self.pool, self.producer) as uow:
            now = await LedgerDayRepository(uow.conn).now()
            return await recompute(uow, merchant_id, from_day, now)

    async def run_pass(self) -> list[LedgerDaySummarized]:
        """Every merchant with postings since the watermark; then the watermark moves."""
        async with self.pool.acquire() as conn:
            days = LedgerDayRepository(conn)
            since = await days.watermark()
            now = await days.now()
            touched = await days.posted_since(since)
        announced: list[LedgerDaySummarized] = []
        for merchant_id, first in sorted(touched.items()):
            async with unit_of_work(self.pool, self.producer) as uow:
                zone = (await MerchantRepository(uow.conn).profile(merchant_id)).time_zone
                from_day = first.astimezone(ZoneInfo(zone)).date()
                announced += await recompute(uow, merchant_id, from_day, now)
        async with self.pool.acquire() as conn:
            await LedgerDayRepository(conn).set_watermark(now - self.margin)
        if announced:
            log.info("ledger days: %d announced for %d merchants", len(announced), len(touched))
        return announced

    async def run(self) -> None:
        while not self._stop.is_set():
            self._pass_started = time.monotonic()
            try:
                await self.run_pass()
            finally:
                self._pass_started = None
            self._last_pass = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)

    def stop(self) -> None:
        self._stop.set()

    async def readiness(self) -> tuple[bool, str]:
        """Not ready when no pass completed for several intervals, unless one is still
        running (the first pass over a large existing ledger may take minutes) and has not
        been running for longer than `max_pass_s`."""
        allowed = max(120.0, 3 * self.interval_s)
        now = time.monotonic()
        if self._pass_started is not None and now - self._pass_started < self.max_pass_s:
            return True, f"pass running for {now - self._pass_started:.0f}s"
        since = now - (self._last_pass or self._started)
        if self._last_pass is None:
            return since < allowed, "no pass yet"
        return since < allowed, f"last pass {since:.0f}s ago"
