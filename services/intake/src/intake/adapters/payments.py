"""Intake's payments table and its events timeline (the read model)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from intake.domain.payment import PaymentStatus, rank
from sanalpos_common.db import Connection


class PaymentRepository:
    def __init__(self, conn: Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def add(self, row: dict[str, Any]) -> None:
        columns = list(row)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        values = [json.dumps(v) if k == "metadata" else v for k, v in row.items()]
        await self.conn.execute(
            f"INSERT INTO payments ({', '.join(columns)}) VALUES ({placeholders})",  # noqa: S608
            *values,
        )

    async def get(self, merchant_id: str, payment_id: uuid.UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM payments WHERE id = $1 AND merchant_id = $2", payment_id, merchant_id
        )

    async def exists(self, payment_id: uuid.UUID) -> bool:
        found = await self.conn.fetchval("SELECT 1 FROM payments WHERE id = $1", payment_id)
        return found is not None

    async def events(self, payment_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT type, occurred_at, details FROM payment_events "
            "WHERE payment_id = $1 ORDER BY occurred_at, type",
            payment_id,
        )

    async def record_event(
        self,
        message_id: uuid.UUID,
        payment_id: uuid.UUID,
        event_type: str,
        occurred_at: datetime,
        details: dict[str, Any],
    ) -> None:
        await self.conn.execute(
            "INSERT INTO payment_events (message_id, payment_id, type, occurred_at, details) "
            "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING",
            message_id,
            payment_id,
            event_type,
            occurred_at,
            json.dumps(details),
        )

    async def advance_status(self, payment_id: uuid.UUID, status: PaymentStatus) -> bool:
        """Moves the status forward only; a late or repeated event leaves it alone."""
        updated = await self.conn.fetchval(
            "UPDATE payments SET status = $2, status_rank = $3, updated_at = now() "
            "WHERE id = $1 AND status_rank < $3 AND status <> 'declined' RETURNING 1",
            payment_id,
            status.value,
            rank(status),
        )
        return updated is not None

    async def set_outcome_details(self, payment_id: uuid.UUID, details: dict[str, Any]) -> None:
        allowed = {"response_code", "auth_code", "decline_reason", "fee_amount", "net_amount"}
        fields = {k: v for k, v in details.items() if k in allowed}
        if not fields:
            return
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=2))
        await self.conn.execute(
            f"UPDATE payments SET {assignments} WHERE id = $1",  # noqa: S608 - names are whitelisted
            payment_id,
            *fields.values(),
        )


class IdempotencyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def find(self, merchant_id: str, key: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys "
            "WHERE merchant_id = $1 AND key = $2",
            merchant_id,
            key,
        )

    async def save(
        self, merchant_id: str, key: str, request_hash: str, status: int, body: dict[str, Any]
    ) -> bool:
        """False when a concurrent request with the same key committed first."""
        saved = await self.conn.fetchval(
            "INSERT INTO idempotency_keys (merchant_id, key, request_hash, response_status, "
            "response_body) VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING RETURNING 1",
            merchant_id,
            key,
            request_hash,
            status,
            json.dumps(body),
        )
        return saved is not None
