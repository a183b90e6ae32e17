"""3-D Secure challenges waiting for the shopper, in authorization's database."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncpg import Record

from authorization.domain.three_ds import AuthenticationCause, CardProfile
from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import PaymentScored


@dataclass(frozen=True)
class Challenge:
    challenge_id: str
    payment_id: uuid.UUID
    merchant_id: str
    card_profile: CardProfile
    cause: AuthenticationCause
    ds_transaction_id: uuid.UUID
    code_hash: str
    attempts: int
    max_attempts: int
    expires_at: datetime
    return_url: str | None
    status: str
    scored: PaymentScored | None
    """Set while pending; None once the challenge ended (the ciphertexts are dropped)."""

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    @property
    def attempts_left(self) -> int:
        return max(self.max_attempts - self.attempts, 0)


_COLUMNS = (
    "challenge_id, payment_id, merchant_id, card_profile, cause, ds_transaction_id, code_hash, "
    "attempts, max_attempts, expires_at, return_url, status, scored_payload::text AS scored"
)


def _challenge(row: Mapping[str, Any] | Record) -> Challenge:
    return Challenge(
        challenge_id=row["challenge_id"],
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        card_profile=CardProfile(row["card_profile"]),
        cause=AuthenticationCause(row["cause"]),
        ds_transaction_id=row["ds_transaction_id"],
        code_hash=row["code_hash"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        expires_at=row["expires_at"],
        return_url=row["return_url"],
        status=row["status"],
        scored=None if row["scored"] is None else PaymentScored.model_validate_json(row["scored"]),
    )


class ChallengeRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def is_pending(self, payment_id: object, merchant_id: str) -> bool:
        found = await self.conn.fetchval(
            "SELECT 1 FROM three_ds_challenges WHERE payment_id = $1 AND merchant_id = $2 "
            "AND status = 'pending'",
            payment_id,
            merchant_id,
        )
        return found is not None

    async def add(self, challenge: Challenge, scored: PaymentScored) -> None:
        await self.conn.execute(
            "INSERT INTO three_ds_challenges (challenge_id, payment_id, merchant_id, amount, "
            "currency, card_profile, cause, ds_transaction_id, code_hash, max_attempts, "
            "expires_at, return_url, scored_payload) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)",
            challenge.challenge_id,
            challenge.payment_id,
            challenge.merchant_id,
            scored.amount,
            scored.currency,
            challenge.card_profile.value,
            challenge.cause.value,
            challenge.ds_transaction_id,
            challenge.code_hash,
            challenge.max_attempts,
            challenge.expires_at,
            challenge.return_url,
            scored.model_dump_json(),
        )

    async def get(self, challenge_id: str) -> Challenge | None:
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM three_ds_challenges WHERE challenge_id = $1",  # noqa: S608 - constant columns
            challenge_id,
        )
        return None if row is None else _challenge(row)

    async def lock(self, challenge_id: str) -> Challenge | None:
        """Row-locked until the transaction ends: two answers to one challenge run one after
        the other, and the second sees the first's result."""
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM three_ds_challenges WHERE challenge_id = $1 FOR UPDATE",  # noqa: S608 - constant columns
            challenge_id,
        )
        return None if row is None else _challenge(row)

    async def lock_due(self, now: datetime, limit: int) -> list[Challenge]:
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM three_ds_challenges "  # noqa: S608 - constant columns
            "WHERE status = 'pending' AND expires_at <= $1 "
            "ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [_challenge(r) for r in rows]

    async def count_attempt(self, challenge_id: str) -> None:
        await self.conn.execute(
            "UPDATE three_ds_challenges SET attempts = attempts + 1 "
            "WHERE challenge_id = $1 AND status = 'pending'",
            challenge_id,
        )

    async def finish(self, challenge_id: str, status: str, *, attempted: bool) -> None:
        """End a pending challenge and drop the card ciphertexts; fails loudly if it was not
        pending (the caller read it pending under the row lock)."""
        done = await self.conn.fetchval(
            "UPDATE three_ds_challenges SET status = $2, finished_at = now(), "
            "scored_payload = NULL, attempts = attempts + $3 "
            "WHERE challenge_id = $1 AND status = 'pending' RETURNING 1",
            challenge_id,
            status,
            1 if attempted else 0,
        )
        if done is None:
            raise RuntimeError(f"challenge {challenge_id} is no longer pending")
