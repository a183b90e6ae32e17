"""Reconciliation (docs/reconciliation.md): authorization's clearing files arrive as events
and are stored; the job matches, for each merchant, currency and date, the clearing file,
the ledger and the payouts, and stores the mismatches of its latest run with their reasons.

Daily: the loop reconciles every complete clearing file whose version no run has seen, once
it has been complete for `settle_s` (captures and refunds travel on other topics and may be
read a little after the file). On demand (ops API, `sanalpos recon run`): a date, for every
merchant and currency with a file, ledger lines or payouts that day, file or not.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.metrics import SettlementMetrics
from sanalpos_common.periodic import PeriodicJob
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import ClearingReported
from settlement.adapters.reconciliation import ClearingStore, ReconciliationStore
from settlement.domain.reconciliation import Mismatch, match_clearing, match_payouts
from settlement.service_layer.batch_closing import utc_now

log = logging.getLogger(__name__)


async def on_clearing_reported(uow: UnitOfWork, envelope: Envelope[Any]) -> None:
    report: ClearingReported = envelope.payload
    if await ClearingStore(uow.conn).add_part(report):
        log.info(
            "clearing file %s %s %s v%d part %d/%d: %d lines",
            report.merchant_id,
            report.currency,
            report.clearing_date,
            report.version,
            report.part,
            report.part_count,
            len(report.lines),
        )
    else:
        log.info("clearing part already held or superseded; ignored")


@dataclass(frozen=True)
class RunOutcome:
    run_id: uuid.UUID
    merchant_id: str
    currency: str
    recon_date: date
    clearing_version: int | None
    mismatches: list[Mismatch]


def day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(time_zone)
    start = datetime.combine(day, datetime.min.time(), zone)
    return start, start + timedelta(days=1)


async def reconcile(
    uow: UnitOfWork,
    merchant_id: str,
    currency: str,
    day: date,
    *,
    time_zone: str,
    trigger: str,
    now: datetime,
) -> RunOutcome:
    """One merchant, currency and date, in the caller's transaction."""
    store = ReconciliationStore(uow.conn)
    await store.lock(merchant_id, currency, day)
    start, end = day_bounds(day, time_zone)
    found = await store.clearing_file(merchant_id, currency, day)
    version, totals, lines = found if found is not None else (None, None, [])
    named = await store.ledger_by_ids([line.ledger_transaction_id for line in lines])
    of_day = await store.ledger_of_day(merchant_id, currency, start, end)
    cleared = await store.cleared(merchant_id, [item.transaction_id for item in of_day])
    mismatches = match_clearing(lines, totals, named, of_day, cleared)
    payouts = await store.payouts_of_day(merchant_id, currency, day)
    mismatches += match_payouts(payouts)
    run_id = uuid.uuid4()
    await store.record_run(
        run_id,
        (merchant_id, currency, day),
        trigger,
        version,
        (len(lines), len(of_day), len(payouts)),
        mismatches,
        now,
    )
    log.info(
        "reconciled %s %s %s (%s): %d clearing lines, %d ledger lines, %d payouts, %d mismatches",
        merchant_id,
        currency,
        day,
        trigger,
        len(lines),
        len(of_day),
        len(payouts),
        len(mismatches),
    )
    return RunOutcome(run_id, merchant_id, currency, day, version, mismatches)


@dataclass
class Reconciler(PeriodicJob):
    pool: asyncpg.Pool
    producer: str
    time_zone: str = "Europe/Istanbul"
    """Whose calendar day the ledger side of a date covers: authorization's clearing zone."""
    interval_s: float = 300.0
    settle_s: float = 300.0
    missing_file_after_s: float = 7200.0
    """Yesterday's merchants and currencies that no run has reconciled by this long after
    midnight (no clearing file came) are reconciled without one."""
    clock: Callable[[], datetime] = utc_now
    metrics: SettlementMetrics | None = None

    def today(self) -> date:
        return self.clock().astimezone(ZoneInfo(self.time_zone)).date()

    async def _run(self, keys: list[tuple[str, str, date]], trigger: str) -> list[RunOutcome]:
        outcomes = []
        for merchant_id, currency, day in keys:
            async with unit_of_work(self.pool, self.producer) as uow:
                outcomes.append(
                    await reconcile(
                        uow,
                        merchant_id,
                        currency,
                        day,
                        time_zone=self.time_zone,
                        trigger=trigger,
                        now=self.clock(),
                    )
                )
        await self.refresh_metrics(outcomes)
        return outcomes

    async def run_for(self, day: date, merchant_id: str | None = None) -> list[RunOutcome]:
        start, end = day_bounds(day, self.time_zone)
        async with self.pool.acquire() as conn:
            pairs = await ReconciliationStore(conn).keys_of_day(day, start, end, merchant_id)
        return await self._run([(m, c, day) for m, c in pairs], "manual")

    async def run_due(self) -> list[RunOutcome]:
        """Complete files not reconciled yet; and, once yesterday is `missing_file_after_s`
        behind, its keys no run has seen (their file never came: every ledger line of the
        day is then missing from clearing)."""
        now = self.clock()
        settled_before = now - timedelta(seconds=self.settle_s)
        yesterday = self.today() - timedelta(days=1)
        start, end = day_bounds(yesterday, self.time_zone)
        async with self.pool.acquire() as conn:
            store = ReconciliationStore(conn)
            keys = await store.unreconciled_files(settled_before)
            if now >= end + timedelta(seconds=self.missing_file_after_s):
                seen = await store.reconciled(yesterday) | {
                    (m, c) for m, c, d in keys if d == yesterday
                }
                keys += [
                    (m, c, yesterday)
                    for m, c in await store.keys_of_day(yesterday, start, end, None)
                    if (m, c) not in seen
                ]
        return await self._run(keys, "daily")

    async def refresh_metrics(self, outcomes: Sequence[RunOutcome] = ()) -> None:
        if self.metrics is None:
            return
        for outcome in outcomes:
            self.metrics.recon_runs.labels("mismatches" if outcome.mismatches else "clean").inc()
        async with self.pool.acquire() as conn:
            counts = await ReconciliationStore(conn).open_counts()
        for kind in ("missing", "duplicate", "amount_differs"):
            self.metrics.recon_mismatches.labels(kind).set(counts.get(kind, 0))

    async def run_once(self) -> object:
        return await self.run_due()
