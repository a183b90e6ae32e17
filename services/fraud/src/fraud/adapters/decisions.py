"""fraud_decisions table: the audit trail of every score. Only safe card fields are stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

Executor = asyncpg.Connection | asyncpg.Pool | asyncpg.pool.PoolConnectionProxy


@dataclass(frozen=True)
class DecisionRow:
    """One fraud_decisions row as the scorer writes it (fields in the table's column order)."""

    payment_id: uuid.UUID
    merchant_id: str
    score: int
    decision: str
    reasons: Sequence[str]
    rules_version: str
    amount: int
    currency: str
    card_fingerprint: str
    card_bin: str
    card_last4: str
    velocity_card_10m: int
    velocity_card_1h: int
    payment_created_at: datetime
    message_id: uuid.UUID
    rules_fired: Sequence[str]
    action: str | None
    decided_by: str
    policy_version: int
    model_version: str | None
    model_probability: float | None
    top_features: Sequence[tuple[str, float]]
    attributes: dict[str, Any]

    def columns(self) -> tuple[Any, ...]:
        """Values as the batch insert binds them (lists and maps as JSON text)."""
        return tuple(
            json.dumps(value, default=str) if name in _JSON_COLUMNS else value
            for name, value in ((name, getattr(self, name)) for name in _FIELDS)
        )


_FIELDS = tuple(DecisionRow.__dataclass_fields__)
_JSON_COLUMNS = frozenset(("reasons", "rules_fired", "top_features", "attributes"))

_INSERT_DECISIONS = """
INSERT INTO fraud_decisions (payment_id, merchant_id, score, decision, reasons, rules_version,
    amount, currency, card_fingerprint, card_bin, card_last4, velocity_card_10m,
    velocity_card_1h, payment_created_at, message_id, rules_fired, action, decided_by,
    policy_version, model_version, model_probability, top_features, attributes)
SELECT d.payment_id, d.merchant_id, d.score, d.decision,
       ARRAY(SELECT jsonb_array_elements_text(d.reasons::jsonb)), d.rules_version, d.amount,
       d.currency, d.card_fingerprint, d.card_bin, d.card_last4, d.velocity_card_10m,
       d.velocity_card_1h, d.payment_created_at, d.message_id,
       ARRAY(SELECT jsonb_array_elements_text(d.rules_fired::jsonb)), d.action, d.decided_by,
       d.policy_version, d.model_version, d.model_probability, d.top_features::jsonb,
       d.attributes::jsonb
FROM unnest($1::uuid[], $2::text[], $3::smallint[], $4::text[], $5::text[], $6::text[],
            $7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[],
            $13::int[], $14::timestamptz[], $15::uuid[], $16::text[], $17::text[], $18::text[],
            $19::bigint[], $20::text[], $21::float8[], $22::text[], $23::text[])
     WITH ORDINALITY AS d(payment_id, merchant_id, score, decision, reasons, rules_version,
         amount, currency, card_fingerprint, card_bin, card_last4, velocity_card_10m,
         velocity_card_1h, payment_created_at, message_id, rules_fired, action, decided_by,
         policy_version, model_version, model_probability, top_features, attributes, position)
ORDER BY d.position
ON CONFLICT (payment_id) DO NOTHING
RETURNING payment_id
"""


class DecisionRepository:
    def __init__(self, conn: Executor) -> None:
        self.conn = conn

    async def add_many(self, rows: Sequence[DecisionRow]) -> set[uuid.UUID]:
        """One statement for the batch; returns the payments that got their (first) decision:
        an existing decision is never overwritten."""
        columns: list[list[Any]] = [[] for _ in _FIELDS]
        for row in rows:
            for column, value in zip(columns, row.columns(), strict=True):
                column.append(value)
        inserted = await self.conn.fetch(_INSERT_DECISIONS, *columns)
        return {r["payment_id"] for r in inserted}

    async def with_review(self, payment_id: uuid.UUID) -> asyncpg.Record | None:
        """The decision and, when it went to review, its resolution (columns review_*)."""
        return await self.conn.fetchrow(
            "SELECT d.*, r.decision AS review_decision, r.note AS review_note, r.resolved_by, "
            "r.resolved_at FROM fraud_decisions d LEFT JOIN fraud_review_resolutions r "
            "ON r.payment_id = d.payment_id WHERE d.payment_id = $1",
            payment_id,
        )

    async def lock_for_review(self, payment_id: uuid.UUID) -> asyncpg.Record | None:
        """merchant_id, decision and action, row-locked until the transaction ends."""
        return await self.conn.fetchrow(
            "SELECT merchant_id, decision, action FROM fraud_decisions "
            "WHERE payment_id = $1 FOR UPDATE",
            payment_id,
        )

    async def scoring_context(self, payment_id: uuid.UUID) -> asyncpg.Record | None:
        """What a fraud label keeps of the scored payment: amount, currency, BIN, time and
        the attributes it was scored with."""
        return await self.conn.fetchrow(
            "SELECT amount, currency, card_bin, payment_created_at, attributes "
            "FROM fraud_decisions WHERE payment_id = $1",
            payment_id,
        )
