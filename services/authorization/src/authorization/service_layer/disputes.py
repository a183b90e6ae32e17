"""The issuer simulator's chargebacks: a dispute on a captured payment (at most what is
captured, less refunds and the issuer's other disputes not decided for the merchant), then the
issuer's ruling. Each is recorded and announced through the outbox in one transaction; the
merchant's side of it (hold, answer, ledger) is settlement's (docs/disputes.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from sanalpos_common.db import unit_of_work
from sanalpos_common.schemas.events import DisputeDecided, DisputeRaised

DISPUTABLE = ("captured", "partially_refunded")


class DisputeRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class Chargeback:
    payment_id: uuid.UUID
    reason_code: str
    reason: str
    amount: int | None = None
    respond_by: datetime | None = None
    dispute_id: uuid.UUID | None = None


async def raise_chargeback(
    pool: asyncpg.Pool, producer: str, chargeback: Chargeback, now: datetime
) -> dict[str, Any]:
    dispute_id = chargeback.dispute_id or uuid.uuid4()
    async with unit_of_work(pool, producer) as uow:
        existing = await uow.conn.fetchrow(
            "SELECT * FROM issuer_disputes WHERE dispute_id = $1", dispute_id
        )
        if existing is not None:
            return dict(existing)
        payment = await uow.conn.fetchrow(
            "SELECT merchant_id, currency, status, captured_amount, refunded_amount "
            "FROM authorizations WHERE payment_id = $1 FOR UPDATE",
            chargeback.payment_id,
        )
        if payment is None:
            raise DisputeRefused(404, "payment-not-found", "no such payment")
        if payment["status"] not in DISPUTABLE:
            raise DisputeRefused(
                422, "payment-not-disputable", f"a payment {payment['status']} is not disputable"
            )
        disputed = await uow.conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM issuer_disputes WHERE payment_id = $1 "
            "AND outcome IS DISTINCT FROM 'won'",
            chargeback.payment_id,
        )
        left = payment["captured_amount"] - payment["refunded_amount"] - int(disputed)
        amount = left if chargeback.amount is None else chargeback.amount
        if not 0 < amount <= left:
            raise DisputeRefused(
                422, "amount-not-disputable", f"{left} of the payment is left to dispute"
            )
        row = await uow.conn.fetchrow(
            "INSERT INTO issuer_disputes (dispute_id, payment_id, merchant_id, amount, currency, "
            "reason_code, reason, respond_by, raised_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
            dispute_id,
            chargeback.payment_id,
            payment["merchant_id"],
            amount,
            payment["currency"].strip(),
            chargeback.reason_code,
            chargeback.reason,
            chargeback.respond_by,
            now,
        )
        await uow.emit(
            DisputeRaised(
                dispute_id=dispute_id,
                payment_id=chargeback.payment_id,
                merchant_id=payment["merchant_id"],
                amount=amount,
                currency=payment["currency"].strip(),
                reason_code=chargeback.reason_code,
                reason=chargeback.reason,
                respond_by=chargeback.respond_by,
                raised_at=now,
            )
        )
        assert row is not None  # RETURNING of an insert
        return dict(row)


async def rule(
    pool: asyncpg.Pool,
    producer: str,
    dispute_id: uuid.UUID,
    outcome: Literal["won", "lost"],
    now: datetime,
) -> dict[str, Any]:
    """Won or lost, for the merchant; the same ruling again changes nothing."""
    async with unit_of_work(pool, producer) as uow:
        row = await uow.conn.fetchrow(
            "SELECT * FROM issuer_disputes WHERE dispute_id = $1 FOR UPDATE", dispute_id
        )
        if row is None:
            raise DisputeRefused(404, "not-found", "no such dispute")
        if row["outcome"] == outcome:
            return dict(row)
        if row["outcome"] is not None:
            raise DisputeRefused(409, "dispute-closed", f"the dispute was ruled {row['outcome']}")
        updated = await uow.conn.fetchrow(
            "UPDATE issuer_disputes SET outcome = $2, decided_at = $3 WHERE dispute_id = $1 "
            "RETURNING *",
            dispute_id,
            outcome,
            now,
        )
        await uow.emit(
            DisputeDecided(
                dispute_id=dispute_id,
                payment_id=row["payment_id"],
                merchant_id=row["merchant_id"],
                outcome=outcome,
                decided_at=now,
            )
        )
        assert updated is not None  # locked above
        return dict(updated)
