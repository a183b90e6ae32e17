from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncpg import Record

from authorization.domain.lifecycle import Authorization, AuthorizationStatus
from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import ThreeDSAuthentication


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
    installments: int = 1
    captured_amount: int = 0
    """A sale's amount: it is recorded captured (status `captured`) from the start."""
    expires_at: datetime | None = None
    authentication: ThreeDSAuthentication | None = None


_STATE_COLUMNS = (
    "payment_id, merchant_id, amount, currency, status, auth_code, installments, "
    "captured_amount, refunded_amount, expires_at"
)


def _state(row: Mapping[str, Any] | Record) -> Authorization:
    return Authorization(
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        amount=row["amount"],
        currency=row["currency"],
        status=AuthorizationStatus(row["status"]),
        auth_code=row["auth_code"],
        installments=row["installments"],
        captured_amount=row["captured_amount"],
        refunded_amount=row["refunded_amount"],
        expires_at=row["expires_at"],
    )


class AuthorizationRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, record: AuthorizationRecord) -> None:
        await self.conn.execute(
            "INSERT INTO authorizations (payment_id, merchant_id, amount, currency, status, "
            "response_code, auth_code, fraud_score, fraud_decision, card_bin, card_last4, "
            "installments, expires_at, authentication, captured_amount) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15)",
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
            record.installments,
            record.expires_at,
            None if record.authentication is None else record.authentication.model_dump_json(),
            record.captured_amount,
        )

    async def lock(self, payment_id: object) -> Authorization | None:
        """The payment's state, row-locked until the transaction ends: commands and the
        expiry scan on one payment run one after the other, never interleaved."""
        row = await self.conn.fetchrow(
            f"SELECT {_STATE_COLUMNS} FROM authorizations WHERE payment_id = $1 FOR UPDATE",  # noqa: S608 - constant columns
            payment_id,
        )
        return None if row is None else _state(row)

    async def lock_due_preauths(self, now: datetime, limit: int) -> list[Authorization]:
        """Open pre-authorizations past their expiry that no other transaction holds."""
        rows = await self.conn.fetch(
            f"SELECT {_STATE_COLUMNS} FROM authorizations "  # noqa: S608 - constant columns
            "WHERE status = 'authorized' AND expires_at <= $1 "
            "ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [_state(r) for r in rows]

    async def mark_captured(self, payment_id: object, amount: int) -> None:
        await self._move(payment_id, "authorized", "captured", captured_amount=amount)

    async def mark_voided(self, payment_id: object, previous: AuthorizationStatus) -> None:
        await self._move(payment_id, previous.value, "voided")

    async def mark_expired(self, payment_id: object) -> None:
        await self._move(payment_id, "authorized", "expired")

    async def claim_refund(
        self, state: Authorization, refund_id: object, amount: int, reason: str
    ) -> bool:
        """Record the refund under its id; False when that id was executed already."""
        claimed = await self.conn.fetchval(
            "INSERT INTO refunds (refund_id, payment_id, amount, currency, reason) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (refund_id) DO NOTHING RETURNING 1",
            refund_id,
            state.payment_id,
            amount,
            state.currency,
            reason,
        )
        return claimed is not None

    async def mark_refunded(
        self, state: Authorization, amount: int, status: AuthorizationStatus
    ) -> None:
        await self._move(
            state.payment_id,
            state.status.value,
            status.value,
            refunded_amount=state.refunded_amount + amount,
        )

    async def refund_exists(self, refund_id: object) -> bool:
        found = await self.conn.fetchval("SELECT 1 FROM refunds WHERE refund_id = $1", refund_id)
        return found is not None

    async def _move(
        self,
        payment_id: object,
        expected: str,
        status: str,
        *,
        captured_amount: int | None = None,
        refunded_amount: int | None = None,
    ) -> None:
        """Conditional on the status read under the row lock: a lost race fails loudly."""
        done = await self.conn.fetchval(
            "UPDATE authorizations SET status = $3, updated_at = now(), "
            "captured_amount = coalesce($4, captured_amount), "
            "refunded_amount = coalesce($5, refunded_amount) "
            "WHERE payment_id = $1 AND status = $2 RETURNING 1",
            payment_id,
            expected,
            status,
            captured_amount,
            refunded_amount,
        )
        if done is None:
            raise RuntimeError(f"authorization {payment_id} is no longer {expected}")
