"""The payout schedule of batches closed under the `per_installment` plan (migration 0009)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from typing import Any

from sanalpos_common.db import Connection
from settlement.domain.installments import ScheduledPart
from settlement.domain.payouts import DueBatch


class InstallmentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add_schedule(
        self, batch_id: uuid.UUID, merchant_id: str, currency: str, parts: list[ScheduledPart]
    ) -> None:
        await self.conn.execute(
            "UPDATE settlement_batches SET payout_plan = 'per_installment' WHERE id = $1",
            batch_id,
        )
        await self.conn.executemany(
            "INSERT INTO payout_schedule (id, batch_id, merchant_id, currency, payment_id, part, "
            "parts, value_date, amount) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (
                    uuid.uuid4(),
                    batch_id,
                    merchant_id,
                    currency,
                    p.payment_id,
                    p.part,
                    p.parts,
                    p.value_date,
                    p.amount,
                )
                for p in parts
            ],
        )

    async def due_pairs(self, run_date: date) -> list[tuple[str, str]]:
        rows = await self.conn.fetch(
            "SELECT DISTINCT merchant_id, currency FROM payout_schedule "
            "WHERE payout_id IS NULL AND value_date <= $1",
            run_date,
        )
        return [(r["merchant_id"], r["currency"].strip()) for r in rows]

    async def due(self, merchant_id: str, currency: str, run_date: date) -> list[DueBatch]:
        """The parts due, locked, as one line per batch (value date: the earliest part's)."""
        rows = await self.conn.fetch(
            "SELECT s.batch_id, b.batch_date, s.value_date, s.amount FROM payout_schedule s "
            "JOIN settlement_batches b ON b.id = s.batch_id WHERE s.merchant_id = $1 "
            "AND s.currency = $2 AND s.payout_id IS NULL AND s.value_date <= $3 "
            "ORDER BY s.value_date, s.id FOR UPDATE OF s",
            merchant_id,
            currency,
            run_date,
        )
        lines: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for r in rows:
            lines[r["batch_id"]].append(r)
        return [
            DueBatch(
                batch_id,
                parts[0]["batch_date"],
                min(p["value_date"] for p in parts),
                sum(int(p["amount"]) for p in parts),
            )
            for batch_id, parts in lines.items()
        ]

    async def mark_paid(
        self, payout_id: uuid.UUID, lines: tuple[DueBatch, ...], run_date: date
    ) -> None:
        """The due parts of these batches are paid by the payout (called under the lock of
        `due`, so they are the same parts)."""
        batch_ids = [line.batch_id for line in lines]
        await self.conn.execute(
            "UPDATE payout_schedule SET payout_id = $1 WHERE batch_id = ANY($2::uuid[]) "
            "AND payout_id IS NULL AND value_date <= $3",
            payout_id,
            batch_ids,
            run_date,
        )
        await self.conn.executemany(
            "UPDATE payout_lines SET value_date = $3 WHERE payout_id = $1 AND batch_id = $2",
            [(payout_id, line.batch_id, line.value_date) for line in lines],
        )

    async def release(self, payout_id: uuid.UUID) -> None:
        """A returned payout's parts are due again."""
        await self.conn.execute(
            "UPDATE payout_schedule SET payout_id = NULL WHERE payout_id = $1", payout_id
        )

    async def schedule(self, batch_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT payment_id, part, parts, value_date, amount, payout_id FROM payout_schedule "
            "WHERE batch_id = $1 ORDER BY value_date, payment_id NULLS LAST, part",
            batch_id,
        )
        return [dict(r) for r in rows]
