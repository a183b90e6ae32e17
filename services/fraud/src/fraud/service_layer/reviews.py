"""The manual review queue: list what waits, resolve it once, tell authorization (outbox)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from fraud.adapters.decisions import DecisionRepository
from fraud.adapters.reviews import ReviewRepository
from fraud.config import SERVICE
from fraud.service_layer.policy_admin import Conflict, NotFound
from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.events import ReviewDecision, ReviewResolved


async def pending(
    pool: asyncpg.Pool, limit: int = 100, merchant_id: str | None = None
) -> list[dict[str, Any]]:
    """Payments decided `review` and not resolved yet, oldest first."""
    rows = await ReviewRepository(pool).pending(limit, merchant_id)
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
    async with unit_of_work(pool, producer=SERVICE) as uow:
        row = await DecisionRepository(uow.conn).lock_for_review(payment_id)
        if row is None:
            raise NotFound(f"no fraud decision for payment {payment_id}")
        if row["decision"] != "review":
            raise Conflict(f"payment {payment_id} was not sent to review ({row['decision']})")
        if row["action"] == "3ds":
            raise Conflict(
                f"payment {payment_id} was stepped up to 3-D Secure: the shopper's challenge "
                "decides it, not a review"
            )
        resolved_at = await ReviewRepository(uow.conn).add_resolution(
            payment_id, decision.value, note, actor
        )
        if resolved_at is None:
            raise Conflict(f"payment {payment_id} is already resolved")
        await uow.emit(
            ReviewResolved(
                payment_id=payment_id,
                merchant_id=row["merchant_id"],
                decision=decision,
                resolved_by=actor,
                note=note,
            )
        )
    return {
        "payment_id": str(payment_id),
        "decision": decision.value,
        "note": note,
        "resolved_by": actor,
        "resolved_at": resolved_at.isoformat(),
    }
