"""The clearing operations (written by triggers, migration 0005) and the files published."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import ClearingKind, ClearingLine


class ClearingRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def pairs(
        self, start: datetime, end: datetime, merchant_id: str | None = None
    ) -> list[tuple[str, str]]:
        """Merchants and currencies with operations in [start, end)."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT merchant_id, currency FROM clearing_operations "
            "WHERE occurred_at >= $1 AND occurred_at < $2 "
            "AND ($3::text IS NULL OR merchant_id = $3) ORDER BY merchant_id, currency",
            start,
            end,
            merchant_id,
        )
        return [(r["merchant_id"], r["currency"].strip()) for r in rows]

    async def published(self, days: list[date]) -> set[tuple[str, str, date]]:
        rows = await self.conn.fetch(
            "SELECT merchant_id, currency, clearing_date FROM clearing_files "
            "WHERE clearing_date = ANY($1::date[])",
            days,
        )
        return {(r["merchant_id"], r["currency"].strip(), r["clearing_date"]) for r in rows}

    async def next_version(
        self, merchant_id: str, currency: str, day: date, line_count: int, now: datetime
    ) -> int:
        """Records the file and returns its version; the row stays locked until commit, so
        two runs for one day publish one version each, in order."""
        version: int = await self.conn.fetchval(
            "INSERT INTO clearing_files (merchant_id, currency, clearing_date, version, "
            "line_count, published_at) VALUES ($1, $2, $3, 1, $4, $5) "
            "ON CONFLICT (merchant_id, currency, clearing_date) DO UPDATE SET "
            "version = clearing_files.version + 1, line_count = EXCLUDED.line_count, "
            "published_at = EXCLUDED.published_at RETURNING version",
            merchant_id,
            currency,
            day,
            line_count,
            now,
        )
        return version

    async def lines(
        self, merchant_id: str, currency: str, start: datetime, end: datetime
    ) -> list[ClearingLine]:
        rows = await self.conn.fetch(
            "SELECT kind, payment_id, refund_id, amount, occurred_at FROM clearing_operations "
            "WHERE merchant_id = $1 AND currency = $2 AND occurred_at >= $3 AND occurred_at < $4 "
            "ORDER BY occurred_at, payment_id",
            merchant_id,
            currency,
            start,
            end,
        )
        return [
            ClearingLine(
                kind=ClearingKind(r["kind"]),
                payment_id=r["payment_id"],
                refund_id=r["refund_id"],
                amount=r["amount"],
                occurred_at=r["occurred_at"],
            )
            for r in rows
        ]

    async def files(self, day: date | None, limit: int) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM clearing_files WHERE ($1::date IS NULL OR clearing_date = $1) "
            "ORDER BY clearing_date DESC, merchant_id, currency LIMIT $2",
            day,
            limit,
        )
        return [dict(r) | {"currency": r["currency"].strip()} for r in rows]
