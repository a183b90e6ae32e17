"""Intake's copy of settlement's payouts (settlement.payout-updated.v1), newest version wins."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import asyncpg

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import PayoutStatus, PayoutUpdated

_COLUMNS = (
    "payout_id, merchant_id, currency, amount, status, value_date, account_id, iban_last4, "
    "reason, lines, created_at, updated_at, version"
)


class PayoutReadModel:
    def __init__(self, db: Connection | asyncpg.Pool) -> None:
        self.db = db

    async def apply(self, payout: PayoutUpdated) -> bool:
        """False when what we hold is the same or a newer version (a redelivery)."""
        lines = json.dumps([line.model_dump(mode="json") for line in payout.lines])
        applied = await self.db.fetchval(
            f"INSERT INTO payouts ({_COLUMNS}) VALUES "  # noqa: S608 - fixed names
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13) "
            "ON CONFLICT (payout_id) DO UPDATE SET status = EXCLUDED.status, "
            "reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at, "
            "version = EXCLUDED.version WHERE payouts.version < EXCLUDED.version RETURNING 1",
            payout.payout_id,
            payout.merchant_id,
            payout.currency,
            payout.amount,
            payout.status.value,
            payout.value_date,
            payout.account_id,
            payout.iban_last4,
            payout.reason,
            lines,
            payout.created_at,
            payout.updated_at,
            payout.version,
        )
        if applied is None:
            return False
        batch_ids = [line.batch_id for line in payout.lines]
        if payout.status is PayoutStatus.RETURNED:
            await self.db.execute(
                "DELETE FROM payout_batches WHERE payout_id = $1", payout.payout_id
            )
        else:
            await self.db.executemany(
                "INSERT INTO payout_batches (batch_id, payout_id) VALUES ($1, $2) "
                "ON CONFLICT (batch_id) DO UPDATE SET payout_id = EXCLUDED.payout_id",
                [(b, payout.payout_id) for b in batch_ids],
            )
        return True

    async def totals(self, merchant_id: str) -> list[asyncpg.Record]:
        return await self.db.fetch(
            "SELECT currency, status, sum(amount) AS amount FROM payouts WHERE merchant_id = $1 "
            "AND status <> 'returned' GROUP BY currency, status",
            merchant_id,
        )

    async def get(self, merchant_id: str, payout_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM payouts WHERE merchant_id = $1 AND payout_id = $2",  # noqa: S608
            merchant_id,
            payout_id,
        )
        return None if row is None else dict(row)

    async def newest(
        self, merchant_id: str, limit: int, after: uuid.UUID | None
    ) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM payouts WHERE merchant_id = $1 "  # noqa: S608
            "AND ($2::uuid IS NULL OR (created_at, payout_id) < (SELECT created_at, payout_id "
            "FROM payouts WHERE payout_id = $2 AND merchant_id = $1)) "
            "ORDER BY created_at DESC, payout_id DESC LIMIT $3",
            merchant_id,
            after,
            limit,
        )
        return [dict(r) for r in rows]

    async def with_value_dates(self, merchant_id: str, first: date, after_last: date) -> list[Any]:
        """Payouts whose value date is in [first, after_last), for payout timing."""
        return await self.db.fetch(
            "SELECT currency, status, amount, value_date, lines FROM payouts "
            "WHERE merchant_id = $1 AND value_date >= $2 AND value_date < $3",
            merchant_id,
            first,
            after_last,
        )
