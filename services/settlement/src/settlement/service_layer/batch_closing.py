"""Closing end-of-day batches: totals written, every payment still captured in the batch
settled, one payment.settled each through the outbox, all in one transaction per batch.

A batch closes once: the close locks the open batch row and a closed one is skipped, so the
cut-off loop, an operator and a second instance can race without double settlement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

import asyncpg

from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.metrics import SettlementMetrics
from sanalpos_common.schemas.events import BatchClosed, PaymentSettled
from settlement.adapters.batches import BatchCounts, BatchRepository, PaymentRepository
from settlement.adapters.fx import PaymentConversionRepository
from settlement.adapters.merchants import MerchantRepository
from settlement.domain.batches import BatchTotals, batch_totals
from settlement.domain.installments import PER_INSTALLMENT
from settlement.domain.ledger import Kind, merchant_payable
from settlement.domain.value_dates import BusinessCalendar, value_date
from settlement.service_layer.fx import fx_settled_fields
from settlement.service_layer.installment_payouts import schedule_batch

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class CloseReason(StrEnum):
    CUTOFF = "cutoff"
    MANUAL = "manual"


@dataclass(frozen=True)
class ClosedBatch:
    id: uuid.UUID
    merchant_id: str
    currency: str
    batch_date: date
    value_date: date
    totals: BatchTotals
    counts: BatchCounts


async def close_batch(
    uow: UnitOfWork,
    batch_id: uuid.UUID,
    *,
    reason: CloseReason,
    value_date_delay_days: int,
    calendar: BusinessCalendar,
    now: datetime,
) -> ClosedBatch | None:
    """None when the batch was already closed. The value date follows the merchant's payout
    plan (T+N business days), or `value_date_delay_days` for a merchant without one."""
    batches = BatchRepository(uow.conn)
    batch = await batches.lock_for_close(batch_id)
    if batch is None:
        return None
    merchant_id, currency, day = (
        batch["merchant_id"],
        batch["currency"].strip(),
        batch["batch_date"],
    )
    totals = batch_totals(merchant_payable(merchant_id), await batches.lines(batch_id))
    settled = await PaymentRepository(uow.conn).settle_batch(batch_id)
    kinds = await batches.transaction_counts(batch_id)
    counts = BatchCounts(len(settled), kinds.get(Kind.REFUND, 0), kinds.get(Kind.REVERSAL, 0))
    profile = await MerchantRepository(uow.conn).profile(merchant_id)
    delay = profile.payout_delay_days
    payout = value_date(day, value_date_delay_days if delay is None else delay, calendar)
    await batches.mark_closed(
        batch_id, totals=totals, counts=counts, value_date=payout, reason=reason, closed_at=now
    )
    converted = await PaymentConversionRepository(uow.conn).converted(
        [p.payment_id for p in settled]
    )  # issue 13, fx
    schedule = None
    if profile.payout_plan == PER_INSTALLMENT:
        schedule = await schedule_batch(
            uow.conn, batch_id, merchant_id, currency, day, payout, totals.net, settled, calendar
        )
    for p in settled:
        await uow.emit(
            PaymentSettled(
                **fx_settled_fields(converted.get(p.payment_id)),
                payment_id=p.payment_id,
                merchant_id=p.merchant_id,
                gross_amount=p.gross,
                fee_amount=p.fee,
                net_amount=p.gross - p.fee,
                currency=p.currency,
                ledger_transaction_id=p.capture_transaction_id,
                batch_id=batch_id,
                batch_date=day,
            )
        )
    await uow.emit(
        BatchClosed(
            batch_id=batch_id,
            merchant_id=merchant_id,
            currency=currency,
            batch_date=day,
            value_date=payout,
            gross_amount=totals.gross,
            fee_amount=totals.fees,
            refund_amount=totals.refunds,
            reversal_amount=totals.reversals,
            net_amount=totals.net,
            payment_count=counts.payments,
            refund_count=counts.refunds,
            reversal_count=counts.reversals,
            closed_at=now,
            payout_schedule=schedule,
        )
    )
    log.info(
        "batch %s (%s %s %s) closed (%s): %d settled, net %d",
        batch_id,
        merchant_id,
        currency,
        day,
        reason,
        counts.payments,
        totals.net,
    )
    return ClosedBatch(batch_id, merchant_id, currency, day, payout, totals, counts)


@dataclass
class BatchCloser:
    """Closes batches: those past their cut-off (the loop), or a merchant's open ones now."""

    pool: asyncpg.Pool
    producer: str
    """The service name its events carry."""
    value_date_delay_days: int = 1
    """Business days from batch date to value date for merchants without a payout plan."""
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    interval_s: float = 30.0
    clock: Clock = utc_now
    metrics: SettlementMetrics | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _started: float = field(default_factory=time.monotonic)
    _last_pass: float | None = None

    async def close_due(self) -> list[ClosedBatch]:
        async with self.pool.acquire() as conn:
            due = await BatchRepository(conn).due(self.clock())
        return await self._close_each(due, CloseReason.CUTOFF)

    async def close_open(self, merchant_id: str | None = None) -> list[ClosedBatch]:
        async with self.pool.acquire() as conn:
            open_ids = await BatchRepository(conn).open_ids(merchant_id)
        return await self._close_each(open_ids, CloseReason.MANUAL)

    async def _close_each(
        self, batch_ids: list[uuid.UUID], reason: CloseReason
    ) -> list[ClosedBatch]:
        closed = []
        for batch_id in batch_ids:
            async with unit_of_work(self.pool, producer=self.producer) as uow:
                result = await close_batch(
                    uow,
                    batch_id,
                    reason=reason,
                    value_date_delay_days=self.value_date_delay_days,
                    calendar=self.calendar,
                    now=self.clock(),
                )
            if result is not None:
                closed.append(result)
                self._count(result, reason)
        return closed

    def _count(self, batch: ClosedBatch, reason: CloseReason) -> None:
        if self.metrics is not None:
            self.metrics.batches_closed.labels(reason.value).inc()
            self.metrics.payments_settled.inc(batch.counts.payments)

    async def run(self) -> None:
        """The cut-off loop: supervised by the runtime, which restarts it after a failure."""
        while not self._stop.is_set():
            closed = await self.close_due()
            self._last_pass = time.monotonic()
            if closed:
                continue  # more may be due than one query returned
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)

    def stop(self) -> None:
        self._stop.set()

    async def readiness(self) -> tuple[bool, str]:
        """Not ready when the cut-off loop has not completed a pass for several intervals."""
        allowed = max(60.0, 3 * self.interval_s)
        since = time.monotonic() - (self._last_pass or self._started)
        if self._last_pass is None:
            return since < allowed, "no pass yet"
        return since < allowed, f"last pass {since:.0f}s ago"
