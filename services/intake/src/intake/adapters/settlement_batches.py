"""Intake's copy of settlement's closed batches (from settlement.batch-closed.v1)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import BatchClosed

_COLUMNS = (
    "batch_id, merchant_id, currency, batch_date, value_date, gross_amount, fee_amount, "
    "refund_amount, reversal_amount, net_amount, payment_count, refund_count, reversal_count, "
    "closed_at"
)


class SettlementBatches:
    def __init__(self, db: Connection | asyncpg.Pool) -> None:
        self.db = db

    async def add(self, batch: BatchClosed) -> None:
        """A batch closes once; a redelivery changes nothing."""
        await self.db.execute(
            f"INSERT INTO settlement_batches ({_COLUMNS}) VALUES "  # noqa: S608 - fixed names
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
            "ON CONFLICT (batch_id) DO NOTHING",
            batch.batch_id,
            batch.merchant_id,
            batch.currency,
            batch.batch_date,
            batch.value_date,
            batch.gross_amount,
            batch.fee_amount,
            batch.refund_amount,
            batch.reversal_amount,
            batch.net_amount,
            batch.payment_count,
            batch.refund_count,
            batch.reversal_count,
            batch.closed_at,
        )
        if batch.payout_schedule:  # installment payouts (issue 13)
            await self.db.executemany(
                "INSERT INTO settlement_batch_schedule (batch_id, value_date, amount) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                [(batch.batch_id, p.value_date, p.amount) for p in batch.payout_schedule],
            )

    async def net_by_value_date(self, merchant_id: str) -> list[asyncpg.Record]:
        """Batches in no payout (a returned payout's are in none again)."""
        return await self.db.fetch(
            "SELECT currency, value_date, sum(net_amount) AS net_amount FROM settlement_batches b "
            "WHERE merchant_id = $1 AND NOT EXISTS "
            "(SELECT 1 FROM payout_batches p WHERE p.batch_id = b.batch_id) "
            "AND NOT EXISTS (SELECT 1 FROM settlement_batch_schedule s "
            "WHERE s.batch_id = b.batch_id) "
            "GROUP BY currency, value_date",
            merchant_id,
        )

    async def scheduled(self, merchant_id: str) -> list[asyncpg.Record]:
        """Installment batches' parts by value date, with what live payouts paid of each
        batch (payouts pay a batch's parts in value-date order)."""
        return await self.db.fetch(
            "SELECT b.batch_id, b.currency, s.value_date, s.amount, coalesce((SELECT "
            "sum((l->>'amount')::bigint) FROM payouts p, jsonb_array_elements(p.lines) l "
            "WHERE p.merchant_id = b.merchant_id AND p.status <> 'returned' "
            "AND (l->>'batch_id')::uuid = b.batch_id), 0) AS paid "
            "FROM settlement_batches b JOIN settlement_batch_schedule s USING (batch_id) "
            "WHERE b.merchant_id = $1 ORDER BY b.batch_id, s.value_date",
            merchant_id,
        )

    async def newest(
        self, merchant_id: str, limit: int, after: uuid.UUID | None
    ) -> list[dict[str, Any]]:
        """Newest batch date first; `after`: the last batch id of the previous page."""
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM settlement_batches WHERE merchant_id = $1 "  # noqa: S608
            "AND ($2::uuid IS NULL OR (batch_date, batch_id) < (SELECT batch_date, batch_id "
            "FROM settlement_batches WHERE batch_id = $2 AND merchant_id = $1)) "
            "ORDER BY batch_date DESC, batch_id DESC LIMIT $3",
            merchant_id,
            after,
            limit,
        )
        return [dict(r) for r in rows]

    async def merchant_time_zone(self, merchant_id: str) -> str:
        zone = await self.db.fetchval("SELECT time_zone FROM merchants WHERE id = $1", merchant_id)
        assert zone is not None  # the caller authenticated as this merchant
        return str(zone)
