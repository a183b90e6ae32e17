"""fraud_decisions table: the audit trail of every score. Only safe card fields are stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from fraud.domain.scoring import Assessment, Velocity


@dataclass(frozen=True)
class DecisionRecord:
    payment_id: uuid.UUID
    merchant_id: str
    amount: int
    currency: str
    card_fingerprint: str
    card_bin: str
    card_last4: str
    payment_created_at: datetime
    message_id: uuid.UUID
    assessment: Assessment
    velocity: Velocity


class DecisionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(self, record: DecisionRecord) -> bool:
        """False when this payment already has a decision (it is never overwritten)."""
        inserted = await self.conn.fetchval(
            "INSERT INTO fraud_decisions (payment_id, merchant_id, score, decision, reasons, "
            "rules_version, amount, currency, card_fingerprint, card_bin, card_last4, "
            "velocity_card_10m, velocity_card_1h, payment_created_at, message_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
            "ON CONFLICT (payment_id) DO NOTHING RETURNING 1",
            record.payment_id,
            record.merchant_id,
            record.assessment.score,
            record.assessment.decision.value,
            list(record.assessment.reasons),
            record.assessment.rules_version,
            record.amount,
            record.currency,
            record.card_fingerprint,
            record.card_bin,
            record.card_last4,
            record.velocity.card_10m,
            record.velocity.card_1h,
            record.payment_created_at,
            record.message_id,
        )
        return inserted is not None

    async def get(self, payment_id: uuid.UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM fraud_decisions WHERE payment_id = $1", payment_id
        )
