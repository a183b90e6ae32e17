"""Intake's copy of settlement's disputes (settlement.dispute-updated.v1; newest version wins),
their payable moves, and the merchant's answers with their documents."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import DisputeUpdated, EvidenceDocument

_COLUMNS = (
    "d.dispute_id, d.merchant_id, d.payment_id, d.amount, d.currency, d.reason_code, "
    "d.reason, d.status, d.respond_by, d.fee, d.held, d.outcome_reason, d.created_at, "
    "d.updated_at, d.version, a.response, a.text, a.refs, a.responded_at"
)
_FROM = "FROM disputes d LEFT JOIN dispute_answers a ON a.dispute_id = d.dispute_id"


class DisputeReadModel:
    def __init__(self, db: Connection | asyncpg.Pool) -> None:
        self.db = db

    async def apply(self, dispute: DisputeUpdated) -> bool:
        """False when what we hold is the same or a newer version (a redelivery)."""
        applied = await self.db.fetchval(
            "INSERT INTO disputes (dispute_id, merchant_id, payment_id, amount, currency, "
            "reason_code, reason, status, respond_by, fee, held, outcome_reason, created_at, "
            "updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
            "$13, $14, $15) ON CONFLICT (dispute_id) DO UPDATE SET status = EXCLUDED.status, "
            "held = EXCLUDED.held, outcome_reason = EXCLUDED.outcome_reason, "
            "updated_at = EXCLUDED.updated_at, version = EXCLUDED.version "
            "WHERE disputes.version < EXCLUDED.version RETURNING 1",
            dispute.dispute_id,
            dispute.merchant_id,
            dispute.payment_id,
            dispute.amount,
            dispute.currency,
            dispute.reason_code,
            dispute.reason,
            dispute.status.value,
            dispute.respond_by,
            dispute.fee,
            dispute.held,
            dispute.outcome_reason,
            dispute.created_at,
            dispute.updated_at,
            dispute.version,
        )
        if applied is None:
            return False
        await self.db.executemany(
            "INSERT INTO dispute_moves (dispute_id, kind, merchant_id, currency, batch_id, "
            "amount) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            [
                (
                    dispute.dispute_id,
                    m.kind,
                    dispute.merchant_id,
                    dispute.currency,
                    m.batch_id,
                    m.amount,
                )
                for m in dispute.moves
            ],
        )
        return True

    async def claim_fraud_report(self, dispute_id: uuid.UUID) -> bool:
        """True once per dispute: the caller reports it to fraud."""
        claimed = await self.db.fetchval(
            "UPDATE disputes SET fraud_reported = true WHERE dispute_id = $1 "
            "AND NOT fraud_reported RETURNING 1",
            dispute_id,
        )
        return claimed is not None

    async def get(
        self, merchant_id: str, dispute_id: uuid.UUID, *, lock: bool = False
    ) -> dict[str, Any] | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} {_FROM} WHERE d.merchant_id = $1 "
            f"AND d.dispute_id = $2{' FOR UPDATE OF d' if lock else ''}",
            merchant_id,
            dispute_id,
        )
        return None if row is None else _row(row)

    async def newest(
        self, merchant_id: str, limit: int, after: uuid.UUID | None, status: str | None
    ) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} {_FROM} WHERE d.merchant_id = $1 "  # noqa: S608
            "AND ($4::text IS NULL OR d.status = $4) "
            "AND ($2::uuid IS NULL OR (d.created_at, d.dispute_id) < (SELECT created_at, "
            "dispute_id FROM disputes WHERE dispute_id = $2 AND merchant_id = $1)) "
            "ORDER BY d.created_at DESC, d.dispute_id DESC LIMIT $3",
            merchant_id,
            after,
            limit,
            status,
        )
        return [_row(r) for r in rows]

    async def documents(self, dispute_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            "SELECT document_id, file_name, content_type, size, sha256 FROM dispute_documents "
            "WHERE dispute_id = $1 ORDER BY created_at, document_id",
            dispute_id,
        )
        return [dict(r) for r in rows]

    async def answer(
        self,
        row: dict[str, Any],
        response: str,
        text: str | None,
        refs: list[str],
        documents: list[tuple[EvidenceDocument, bytes]],
        responded_at: Any,
    ) -> None:
        await self.db.execute(
            "INSERT INTO dispute_answers (dispute_id, merchant_id, response, text, refs, "
            "responded_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
            row["dispute_id"],
            row["merchant_id"],
            response,
            text,
            json.dumps(refs),
            responded_at,
        )
        await self.db.executemany(
            "INSERT INTO dispute_documents (document_id, dispute_id, merchant_id, file_name, "
            "content_type, size, sha256, content) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                (
                    d.document_id,
                    row["dispute_id"],
                    row["merchant_id"],
                    d.file_name,
                    d.content_type,
                    d.size,
                    d.sha256,
                    content,
                )
                for d, content in documents
            ],
        )

    async def held(self, merchant_id: str) -> list[asyncpg.Record]:
        return await self.db.fetch(
            "SELECT currency, sum(held) AS held FROM disputes WHERE merchant_id = $1 "
            "GROUP BY currency",
            merchant_id,
        )

    async def unbatched(self, merchant_id: str) -> list[asyncpg.Record]:
        """Payable moves whose batch has not closed yet (a closed one's net includes them)."""
        return await self.db.fetch(
            "SELECT currency, sum(amount) AS amount FROM dispute_moves m WHERE merchant_id = $1 "
            "AND NOT EXISTS (SELECT 1 FROM settlement_batches b WHERE b.batch_id = m.batch_id) "
            "GROUP BY currency",
            merchant_id,
        )


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    refs = out.get("refs")
    out["refs"] = json.loads(refs) if isinstance(refs, str) else (refs or [])
    return out
