"""fraud_review_resolutions table: the manual review queue and how each review ended."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from fraud.adapters.decisions import Executor


class ReviewRepository:
    def __init__(self, conn: Executor) -> None:
        self.conn = conn

    async def pending(self, limit: int, merchant_id: str | None) -> list[asyncpg.Record]:
        """Decisions `review` with no resolution yet, oldest first. A `3ds` step-up is not
        in the queue: the shopper's 3-D Secure challenge decides it, not a reviewer."""
        return await self.conn.fetch(
            "SELECT d.payment_id, d.merchant_id, d.score, d.action, d.reasons, d.rules_fired, "
            "d.amount, d.currency, d.card_bin, d.card_last4, d.created_at FROM fraud_decisions d "
            "LEFT JOIN fraud_review_resolutions r ON r.payment_id = d.payment_id "
            "WHERE d.decision = 'review' AND d.action IS DISTINCT FROM '3ds' "
            "AND r.payment_id IS NULL "
            "AND ($2::text IS NULL OR d.merchant_id = $2) ORDER BY d.created_at LIMIT $1",
            limit,
            merchant_id,
        )

    async def add_resolution(
        self, payment_id: uuid.UUID, decision: str, note: str | None, actor: str
    ) -> datetime | None:
        """When it was resolved; None when it already had a resolution (kept as it was)."""
        resolved_at: datetime | None = await self.conn.fetchval(
            "INSERT INTO fraud_review_resolutions (payment_id, decision, note, resolved_by) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING resolved_at",
            payment_id,
            decision,
            note,
            actor,
        )
        return resolved_at
