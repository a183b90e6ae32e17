"""The manual review queue: list what waits, resolve it once, tell authorization (outbox)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from fraud.service_layer.policy_admin import Conflict, NotFound
from sanalpos_common import topics
from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.events import ReviewDecision, ReviewResolved

PRODUCER = "fraud"


async def pending(
    pool: asyncpg.Pool, limit: int = 100, merchant_id: str | None = None
) -> list[dict[str, Any]]:
    """Payments decided `review` and not resolved yet, oldest first."""
    rows = await pool.fetch(
        "SELECT d.payment_id, d.merchant_id, d.score, d.action, d.reasons, d.rules_fired, "
        "d.amount, d.currency, d.card_bin, d.card_last4, d.created_at FROM fraud_decisions d "
        "LEFT JOIN fraud_review_resolutions r ON r.payment_id = d.payment_id "
        "WHERE d.decision = 'review' AND r.payment_id IS NULL "
        "AND ($2::text IS NULL OR d.merchant_id = $2) ORDER BY d.created_at LIMIT $1",
        limit,
        merchant_id,
    )
    return [
        {
            **dict(r),
            "payment_id": str(r["payment_id"]),
            "action": r["action"] or "review",
            "reasons": list(r["reasons"]),
            "rules_fired": list(r["rules_fired"]),
            "created_at": r["created_at"].isoformat(),
        }
        for r in rows
    ]


async def resolve(
    pool: asyncpg.Pool,
    payment_id: uuid.UUID,
    decision: ReviewDecision,
    note: str | None,
    actor: str,
) -> dict[str, Any]:
    """Stores the resolution and emits ReviewResolved in one transaction; twice -> Conflict."""
    async with unit_of_work(pool) as uow:
        row = await uow.conn.fetchrow(
            "SELECT merchant_id, decision FROM fraud_decisions WHERE payment_id = $1 FOR UPDATE",
            payment_id,
        )
        if row is None:
            raise NotFound(f"no fraud decision for payment {payment_id}")
        if row["decision"] != "review":
            raise Conflict(f"payment {payment_id} was not sent to review ({row['decision']})")
        resolved_at = await uow.conn.fetchval(
            "INSERT INTO fraud_review_resolutions (payment_id, decision, note, resolved_by) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING resolved_at",
            payment_id,
            decision.value,
            note,
            actor,
        )
        if resolved_at is None:
            raise Conflict(f"payment {payment_id} is already resolved")
        event = ReviewResolved(
            payment_id=payment_id,
            merchant_id=row["merchant_id"],
            decision=decision,
            resolved_by=actor,
            note=note,
        )
        await uow.emit_envelope(
            topics.REVIEW_RESOLVED,
            new_envelope(
                topics.REVIEW_RESOLVED, event, correlation_id=payment_id, producer=PRODUCER
            ),
        )
    return {
        "payment_id": str(payment_id),
        "decision": decision.value,
        "note": note,
        "resolved_by": actor,
        "resolved_at": resolved_at.isoformat(),
    }
