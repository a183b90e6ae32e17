"""A stored decision in readable form: score, reasons explained, rules, model, versions."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from fraud.adapters.decisions import DecisionRepository
from fraud.domain.explain import DECIDED_BY, explain_all


async def readable_decision(pool: asyncpg.Pool, payment_id: uuid.UUID) -> dict[str, Any] | None:
    row = await DecisionRepository(pool).with_review(payment_id)
    if row is None:
        return None
    reasons = list(row["reasons"])
    top = json.loads(row["top_features"]) if row["top_features"] else []
    review = None
    if row["decision"] == "review":
        review = {
            "action": row["action"] or "review",
            "status": row["review_decision"] or "pending",
            "note": row["review_note"],
            "resolved_by": row["resolved_by"],
            "resolved_at": row["resolved_at"].isoformat() if row["resolved_at"] else None,
        }
    return {
        "payment_id": str(row["payment_id"]),
        "merchant_id": row["merchant_id"],
        "score": row["score"],
        "decision": row["decision"],
        "summary": DECIDED_BY.get(row["decided_by"], row["decided_by"]),
        "decided_by": row["decided_by"],
        "reasons": reasons,
        "explanation": explain_all(reasons),
        "rules_fired": list(row["rules_fired"]),
        "model": {
            "version": row["model_version"],
            "probability": row["model_probability"],
            "top_features": [{"feature": name, "contribution": value} for name, value in top],
        },
        "versions": {
            "rules": row["rules_version"],
            "policy": row["policy_version"],
            "model": row["model_version"],
        },
        "velocity": {"card_10m": row["velocity_card_10m"], "card_1h": row["velocity_card_1h"]},
        "payment": {
            "amount": row["amount"],
            "currency": row["currency"],
            "card_bin": row["card_bin"],
            "card_last4": row["card_last4"],
            "created_at": row["payment_created_at"].isoformat(),
        },
        "review": review,
        "decided_at": row["created_at"].isoformat(),
    }
