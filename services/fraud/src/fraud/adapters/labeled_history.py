"""fraud_labeled_history table: payments labeled fraud, with the features to learn from."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fraud.adapters.decisions import Executor


@dataclass(frozen=True)
class FraudLabel:
    payment_id: uuid.UUID
    source: str
    reason: str
    reported_at: datetime
    merchant_id: str
    amount: int | None
    currency: str | None
    card_fingerprint: str
    card_bin: str
    payment_created_at: datetime | None
    features: dict[str, Any]


async def add_fraud_label(conn: Executor, label: FraudLabel) -> None:
    """Label 1 (fraud); a payment labeled before keeps its first label."""
    await conn.execute(
        "INSERT INTO fraud_labeled_history (payment_id, label, source, reason, reported_at, "
        "merchant_id, amount, currency, card_fingerprint, card_bin, payment_created_at, features) "
        "VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb) "
        "ON CONFLICT (payment_id) DO NOTHING",
        label.payment_id,
        label.source,
        label.reason,
        label.reported_at,
        label.merchant_id,
        label.amount,
        label.currency,
        label.card_fingerprint,
        label.card_bin,
        label.payment_created_at,
        json.dumps(label.features, default=str),
    )
