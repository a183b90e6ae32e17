from __future__ import annotations

from dataclasses import dataclass

from sanalpos_common.db import Connection


@dataclass(frozen=True)
class AuthorizationRecord:
    payment_id: object
    merchant_id: str
    amount: int
    currency: str
    status: str
    response_code: str
    auth_code: str | None
    fraud_score: int
    fraud_decision: str
    card_bin: str
    card_last4: str


class AuthorizationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def exists(self, payment_id: object) -> bool:
        found = await self.conn.fetchval(
            "SELECT 1 FROM authorizations WHERE payment_id = $1", payment_id
        )
        return found is not None

    async def add(self, record: AuthorizationRecord) -> None:
        await self.conn.execute(
            "INSERT INTO authorizations (payment_id, merchant_id, amount, currency, status, "
            "response_code, auth_code, fraud_score, fraud_decision, card_bin, card_last4) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            record.payment_id,
            record.merchant_id,
            record.amount,
            record.currency,
            record.status,
            record.response_code,
            record.auth_code,
            record.fraud_score,
            record.fraud_decision,
            record.card_bin,
            record.card_last4,
        )

    async def mark_captured(self, payment_id: object) -> None:
        await self.conn.execute(
            "UPDATE authorizations SET status = 'captured', updated_at = now() WHERE payment_id = $1",
            payment_id,
        )
