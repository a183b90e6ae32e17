"""The `per_installment` payout plan in the batch close and the payout job
(domain/installments.py has the rule)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import ScheduledPayout
from settlement.adapters.batches import CapturedPayment
from settlement.adapters.installments import InstallmentRepository
from settlement.domain.installments import SettledSale, batch_schedule
from settlement.domain.payouts import DueBatch, PlannedPayout
from settlement.domain.value_dates import BusinessCalendar


async def schedule_batch(
    conn: Connection,
    batch_id: uuid.UUID,
    merchant_id: str,
    currency: str,
    batch_date: date,
    value_date: date,
    net: int,
    settled: Sequence[CapturedPayment],
    calendar: BusinessCalendar,
) -> tuple[ScheduledPayout, ...]:
    """Writes the schedule of a batch closing under the plan, in the close's transaction;
    returns it by value date, for batch-closed."""
    sales = [SettledSale(p.payment_id, p.gross - p.fee, p.installments) for p in settled]
    parts = batch_schedule(batch_date, value_date, net, sales, calendar)
    await InstallmentRepository(conn).add_schedule(batch_id, merchant_id, currency, parts)
    by_date: dict[date, int] = defaultdict(int)
    for part in parts:
        by_date[part.value_date] += part.amount
    return tuple(ScheduledPayout(value_date=d, amount=a) for d, a in sorted(by_date.items()) if a)


async def due_parts(
    conn: Connection, merchant_id: str, currency: str, run_date: date
) -> list[DueBatch]:
    return await InstallmentRepository(conn).due(merchant_id, currency, run_date)


async def mark_paid(conn: Connection, payout: PlannedPayout, run_date: date) -> None:
    await InstallmentRepository(conn).mark_paid(payout.payout_id, payout.lines, run_date)
