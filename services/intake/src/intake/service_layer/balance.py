"""The merchant's balance and settlement batches, read from settlement's batch-closed and
payout-updated events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from intake.adapters.disputes import DisputeReadModel
from intake.adapters.payouts import PayoutReadModel
from intake.adapters.settlement_batches import SettlementBatches
from intake.domain.balance import (
    ClosedBatch,
    CurrencyBalance,
    PayoutTotal,
    balances,
    unpaid_parts,
)
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import BatchClosed

_AMOUNTS = ("gross_amount", "fee_amount", "refund_amount", "reversal_amount", "net_amount")
_COUNTS = ("payment_count", "refund_count", "reversal_count")


async def on_batch_closed(uow: UnitOfWork, envelope: Envelope[BatchClosed]) -> None:
    await SettlementBatches(uow.conn).add(envelope.payload)


def _balance_view(balance: CurrencyBalance) -> dict[str, Any]:
    next_payout = None
    if balance.next_value_date is not None:
        next_payout = {
            "value_date": balance.next_value_date.isoformat(),
            "amount": balance.next_value_amount,
        }
    return {
        "currency": balance.currency,
        "pending": balance.pending,
        "available": balance.available,
        "paid_out": balance.paid_out,
        "in_transit": balance.in_transit,
        "held": balance.held,
        "next_payout": next_payout,
    }


async def merchant_balance(
    pool: asyncpg.Pool, merchant_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """As of today in the merchant's time zone: a value date of today is available."""
    async with pool.acquire() as conn:
        batches = SettlementBatches(conn)
        zone = await batches.merchant_time_zone(merchant_id)
        rows = await batches.net_by_value_date(merchant_id)
        scheduled = await batches.scheduled(merchant_id)
        sent = await PayoutReadModel(conn).totals(merchant_id)
        disputes = DisputeReadModel(conn)
        held = {r["currency"].strip(): int(r["held"]) for r in await disputes.held(merchant_id)}
        unbatched = {
            r["currency"].strip(): int(r["amount"]) for r in await disputes.unbatched(merchant_id)
        }
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone)).date()
    closed = [ClosedBatch(r["currency"].strip(), r["value_date"], r["net_amount"]) for r in rows]
    closed += _installment_parts(scheduled)
    payouts = [PayoutTotal(r["currency"].strip(), r["status"], r["amount"]) for r in sent]
    return {
        "object": "balance",
        "as_of": today.isoformat(),
        "balances": [_balance_view(b) for b in balances(closed, today, payouts, held, unbatched)],
    }


def _installment_parts(rows: list[Any]) -> list[ClosedBatch]:
    """Installment batches' unpaid parts, each pending until its own value date."""
    by_batch: dict[Any, list[Any]] = {}
    for r in rows:
        by_batch.setdefault(r["batch_id"], []).append(r)
    parts = []
    for batch_rows in by_batch.values():
        currency, paid = batch_rows[0]["currency"].strip(), int(batch_rows[0]["paid"])
        own = [(r["value_date"], int(r["amount"])) for r in batch_rows]
        parts += [ClosedBatch(currency, d, a) for d, a in unpaid_parts(own, paid)]
    return parts


def _batch_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["batch_id"]),
        "object": "settlement_batch",
        "currency": row["currency"].strip(),
        "batch_date": row["batch_date"].isoformat(),
        "value_date": row["value_date"].isoformat(),
        **{name: row[name] for name in (*_AMOUNTS, *_COUNTS)},
        "closed_at": row["closed_at"].isoformat(),
    }


async def list_batches(
    pool: asyncpg.Pool, merchant_id: str, limit: int, after: uuid.UUID | None
) -> dict[str, Any]:
    """Newest batch date first; pages follow `next_cursor` (the last batch id shown)."""
    rows = await SettlementBatches(pool).newest(merchant_id, limit + 1, after)
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "object": "list",
        "data": [_batch_view(r) for r in page],
        "has_more": more,
        "next_cursor": str(page[-1]["batch_id"]) if more else None,
    }
