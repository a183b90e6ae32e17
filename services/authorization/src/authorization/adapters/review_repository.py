"""Payments fraud held for review, with what authorizing them later takes, and resolutions
read before their payment's score.

The stored `payment.scored` payload carries the card ciphertexts; it is kept only while the
review is pending and set to NULL when it is resolved either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import PaymentScored, ReviewResolved


@dataclass(frozen=True)
class PendingReview:
    scored: PaymentScored


class ReviewRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def is_pending(self, payment_id: object, merchant_id: str) -> bool:
        found = await self.conn.fetchval(
            "SELECT 1 FROM reviews WHERE payment_id = $1 AND merchant_id = $2 "
            "AND status = 'pending'",
            payment_id,
            merchant_id,
        )
        return found is not None

    async def hold(self, scored: PaymentScored) -> None:
        await self.conn.execute(
            "INSERT INTO reviews (payment_id, merchant_id, amount, currency, score, status, "
            "scored_payload) VALUES ($1, $2, $3, $4, $5, 'pending', $6::jsonb)",
            scored.payment_id,
            scored.merchant_id,
            scored.amount,
            scored.currency,
            scored.score,
            scored.model_dump_json(),
        )

    async def lock_pending(self, payment_id: object, merchant_id: str) -> PendingReview | None:
        """The pending review of this merchant's payment, row-locked; None when there is none."""
        payload = await self.conn.fetchval(
            "SELECT scored_payload::text FROM reviews "
            "WHERE payment_id = $1 AND merchant_id = $2 AND status = 'pending' FOR UPDATE",
            payment_id,
            merchant_id,
        )
        if payload is None:
            return None
        return PendingReview(PaymentScored.model_validate_json(payload))

    async def resolve(self, payment_id: object, status: str, resolved_by: str) -> None:
        """Record the outcome and drop the card ciphertexts."""
        await self.conn.execute(
            "UPDATE reviews SET status = $2, resolved_by = $3, resolved_at = now(), "
            "scored_payload = NULL WHERE payment_id = $1 AND status = 'pending'",
            payment_id,
            status,
            resolved_by,
        )

    async def remember_early_resolution(self, resolved: ReviewResolved, message_id: object) -> None:
        """Keep a resolution whose score has not arrived; the first one wins."""
        await self.conn.execute(
            "INSERT INTO review_resolutions_before_score "
            "(payment_id, merchant_id, decision, resolved_by, message_id) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            resolved.payment_id,
            resolved.merchant_id,
            resolved.decision.value,
            resolved.resolved_by,
            message_id,
        )
