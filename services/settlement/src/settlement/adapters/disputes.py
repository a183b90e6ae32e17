"""Disputes as settlement keeps them, and what the ledger already holds about their payment."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import DisputeResponse, DisputeStatus
from settlement.domain.disputes import Dispute
from settlement.domain.ledger import CLEARING, Kind, merchant_payable


def _dispute(row: Any) -> Dispute:
    return Dispute(
        dispute_id=row["dispute_id"],
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        amount=row["amount"],
        currency=row["currency"].strip(),
        reason_code=row["reason_code"],
        reason=row["reason"],
        respond_by=row["respond_by"],
        fee=row["fee"],
        status=DisputeStatus(row["status"]),
        response=None if row["response"] is None else DisputeResponse(row["response"]),
        responded_at=row["responded_at"],
        outcome_reason=row["outcome_reason"],
        version=row["version"],
    )


class DisputeRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, dispute: Dispute) -> bool:
        """False when a dispute with this id is already there (a repeated call)."""
        added = await self.conn.fetchval(
            "INSERT INTO disputes (dispute_id, payment_id, merchant_id, amount, currency, "
            "reason_code, reason, respond_by, fee, status) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            dispute.dispute_id,
            dispute.payment_id,
            dispute.merchant_id,
            dispute.amount,
            dispute.currency,
            dispute.reason_code,
            dispute.reason,
            dispute.respond_by,
            dispute.fee,
            dispute.status.value,
        )
        return added is not None

    async def lock(self, dispute_id: uuid.UUID) -> Dispute | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM disputes WHERE dispute_id = $1 FOR UPDATE", dispute_id
        )
        return None if row is None else _dispute(row)

    async def save(self, dispute: Dispute, evidence: dict[str, Any] | None = None) -> None:
        await self.conn.execute(
            "UPDATE disputes SET status = $2, response = $3, responded_at = $4, "
            "outcome_reason = $5, version = $6, evidence = coalesce($7::jsonb, evidence), "
            "updated_at = now() WHERE dispute_id = $1",
            dispute.dispute_id,
            dispute.status.value,
            None if dispute.response is None else dispute.response.value,
            dispute.responded_at,
            dispute.outcome_reason,
            dispute.version,
            None if evidence is None else json.dumps(evidence),
        )

    async def row(self, dispute_id: uuid.UUID) -> dict[str, Any]:
        row = await self.conn.fetchrow("SELECT * FROM disputes WHERE dispute_id = $1", dispute_id)
        assert row is not None
        return dict(row)

    async def expired_ids(self, before: Any, limit: int = 100) -> list[uuid.UUID]:
        rows = await self.conn.fetch(
            "SELECT dispute_id FROM disputes WHERE status = 'needs_response' "
            "AND respond_by < $1 ORDER BY respond_by LIMIT $2",
            before,
            limit,
        )
        return [r["dispute_id"] for r in rows]

    async def disputed_amount(self, payment_id: uuid.UUID) -> int:
        """Claimed by the payment's disputes, won ones aside (their money came back)."""
        total = await self.conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM disputes WHERE payment_id = $1 "
            "AND status <> 'won'",
            payment_id,
        )
        return int(total)

    async def refunded_amount(self, payment_id: uuid.UUID) -> int:
        total = await self.conn.fetchval(
            "SELECT coalesce(sum(e.amount), 0) FROM ledger_transactions t "
            "JOIN ledger_entries e ON e.transaction_id = t.id "
            "WHERE t.payment_id = $1 AND t.kind = $2 AND e.account = $3",
            payment_id,
            Kind.REFUND.value,
            CLEARING,
        )
        return int(total)

    async def moves(self, dispute: Dispute) -> list[dict[str, Any]]:
        """The dispute's payable moves (signed) and their batches, in booking order."""
        rows = await self.conn.fetch(
            "SELECT t.kind, t.batch_id, "
            "sum(CASE WHEN e.direction = 'credit' THEN e.amount ELSE -e.amount END) AS amount "
            "FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id "
            "WHERE t.payment_id = $1 AND e.account = $2 AND t.batch_id IS NOT NULL "
            "GROUP BY t.kind, t.batch_id, t.created_at ORDER BY t.created_at, t.kind",
            dispute.dispute_id,
            merchant_payable(dispute.merchant_id),
        )
        return [dict(r) for r in rows]

    async def listing(
        self, merchant_id: str | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT * FROM disputes WHERE ($1::text IS NULL OR merchant_id = $1) "
            "AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC LIMIT $3",
            merchant_id,
            status,
            limit,
        )
        return [dict(r) for r in rows]
