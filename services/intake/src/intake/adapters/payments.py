"""Intake's payments table and its events timeline (the read model)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from intake.domain.payment import PaymentFacts, PaymentStatus, rank
from sanalpos_common.db import Connection


class PaymentRepository:
    def __init__(self, conn: Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def add(
        self,
        row: dict[str, Any],
        event: tuple[uuid.UUID, str, datetime, dict[str, Any]] | None = None,
    ) -> None:
        """Inserts the payment and, with `event` (message id, type, time, details), its first
        timeline row in the same statement."""
        columns = list(row)
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        json_columns = ("metadata", "risk_context")
        values = [
            json.dumps(v) if k in json_columns and v is not None else v for k, v in row.items()
        ]
        insert = f"INSERT INTO payments ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
        if event is None:
            await self.conn.execute(insert, *values)
            return
        n = len(values)
        message_id, event_type, occurred_at, details = event
        await self.conn.execute(
            f"WITH payment AS ({insert} RETURNING id) "  # noqa: S608 - names are the row's keys
            "INSERT INTO payment_events (message_id, payment_id, type, occurred_at, details) "
            f"SELECT ${n + 1}, id, ${n + 2}, ${n + 3}, ${n + 4}::jsonb FROM payment "
            "ON CONFLICT DO NOTHING",
            *values,
            message_id,
            event_type,
            occurred_at,
            json.dumps(details),
        )

    async def get(self, merchant_id: str, payment_id: uuid.UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM payments WHERE id = $1 AND merchant_id = $2", payment_id, merchant_id
        )

    async def exists(self, payment_id: uuid.UUID) -> bool:
        found = await self.conn.fetchval("SELECT 1 FROM payments WHERE id = $1", payment_id)
        return found is not None

    async def events(self, payment_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT type, occurred_at, details FROM payment_events "
            "WHERE payment_id = $1 ORDER BY occurred_at, type",
            payment_id,
        )

    async def record_event(
        self,
        message_id: uuid.UUID,
        payment_id: uuid.UUID,
        event_type: str,
        occurred_at: datetime,
        details: dict[str, Any],
    ) -> None:
        await self.conn.execute(
            "INSERT INTO payment_events (message_id, payment_id, type, occurred_at, details) "
            "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING",
            message_id,
            payment_id,
            event_type,
            occurred_at,
            json.dumps(details),
        )


_OUTCOME_COLUMNS = ("response_code", "auth_code", "decline_reason", "fee_amount", "net_amount")
_OUTCOME_CASTS = {"authentication": "::jsonb", "next_action_expires_at": "::timestamptz"}


def outcome_columns(details: dict[str, Any]) -> dict[str, Any]:
    """The payment columns an outcome event's details set (names are whitelisted: they go
    into SQL text)."""
    fields = {k: v for k, v in details.items() if k in _OUTCOME_COLUMNS}
    # 3-D Secure: the next action while it requires one, the authentication once decided.
    if "authentication" in details:
        fields["authentication"] = json.dumps(details["authentication"])
    if details.get("next_action_url") is not None:
        fields["next_action_url"] = details["next_action_url"]
        expires = details.get("next_action_expires_at")
        fields["next_action_expires_at"] = (
            None if expires is None else datetime.fromisoformat(expires)
        )
    return fields


class IdempotencyRepository:
    """Rows of idempotency_keys: claimed (`in_progress`) or `done` with the response to
    replay. The protocol lives in intake.service_layer.idempotency."""

    def __init__(self, conn: Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def find(self, merchant_id: str, key: str) -> asyncpg.Record | None:
        """A finished key (a claimed one still executing is not found)."""
        return await self.conn.fetchrow(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys "
            "WHERE merchant_id = $1 AND key = $2 AND state = 'done'",
            merchant_id,
            key,
        )

    async def save(
        self, merchant_id: str, key: str, request_hash: str, status: int, body: dict[str, Any]
    ) -> bool:
        """Completes the key (inserting it, or finishing a claim for the same request); False
        when a concurrent request with the same key completed first."""
        saved = await self.conn.fetchval(
            "INSERT INTO idempotency_keys (merchant_id, key, request_hash, response_status, "
            "response_body, state) VALUES ($1, $2, $3, $4, $5::jsonb, 'done') "
            "ON CONFLICT (merchant_id, key) DO UPDATE SET state = 'done', "
            "response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body, "
            "locked_until = NULL WHERE idempotency_keys.state = 'in_progress' "
            "AND idempotency_keys.request_hash = EXCLUDED.request_hash RETURNING 1",
            merchant_id,
            key,
            request_hash,
            status,
            json.dumps(body),
        )
        return saved is not None

    async def claim(
        self,
        merchant_id: str,
        key: str,
        endpoint: str,
        request_hash: str,
        claim_id: uuid.UUID,
        lock_for_s: float,
    ) -> bool:
        """Claims a new key, or takes over a claim whose lock expired (same request only)."""
        claimed = await self.conn.fetchval(
            "INSERT INTO idempotency_keys (merchant_id, key, endpoint, request_hash, state, "
            "claim_id, locked_until) VALUES ($1, $2, $3, $4, 'in_progress', $5, "
            "now() + make_interval(secs => $6)) "
            "ON CONFLICT (merchant_id, key) DO UPDATE SET claim_id = EXCLUDED.claim_id, "
            "locked_until = EXCLUDED.locked_until WHERE idempotency_keys.state = 'in_progress' "
            "AND idempotency_keys.locked_until < now() "
            "AND idempotency_keys.endpoint = EXCLUDED.endpoint "
            "AND idempotency_keys.request_hash = EXCLUDED.request_hash RETURNING 1",
            merchant_id,
            key,
            endpoint,
            request_hash,
            claim_id,
            lock_for_s,
        )
        return claimed is not None

    async def lookup(self, merchant_id: str, key: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT endpoint, request_hash, state, response_status, response_body, locked_until "
            "FROM idempotency_keys WHERE merchant_id = $1 AND key = $2",
            merchant_id,
            key,
        )

    async def complete(
        self, merchant_id: str, key: str, claim_id: uuid.UUID, status: int, body: dict[str, Any]
    ) -> bool:
        done = await self.conn.fetchval(
            "UPDATE idempotency_keys SET state = 'done', response_status = $4, "
            "response_body = $5::jsonb, locked_until = NULL "
            "WHERE merchant_id = $1 AND key = $2 AND claim_id = $3 AND state = 'in_progress' "
            "RETURNING 1",
            merchant_id,
            key,
            claim_id,
            status,
            json.dumps(body),
        )
        return done is not None

    async def release(self, merchant_id: str, key: str, claim_id: uuid.UUID) -> None:
        await self.conn.execute(
            "DELETE FROM idempotency_keys "
            "WHERE merchant_id = $1 AND key = $2 AND claim_id = $3 AND state = 'in_progress'",
            merchant_id,
            key,
            claim_id,
        )

    async def purge(self, older_than_s: float) -> int:
        status = await self.conn.execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
            older_than_s,
        )
        return int(status.split()[-1])


class LifecycleRepository:
    """The read model's facts per payment, the refunds intake gatekeeps, the merchant's
    cut-off. Row locks (FOR UPDATE) serialize operations and events on one payment."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def lock(self, payment_id: uuid.UUID) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM payments WHERE id = $1 FOR UPDATE", payment_id
        )

    async def lock_for_merchant(
        self, merchant_id: str, payment_id: uuid.UUID
    ) -> asyncpg.Record | None:
        return await self.conn.fetchrow(
            "SELECT * FROM payments WHERE id = $1 AND merchant_id = $2 FOR UPDATE",
            payment_id,
            merchant_id,
        )

    async def apply_outcome(
        self,
        payment_id: uuid.UUID,
        event: tuple[uuid.UUID, str, datetime, dict[str, Any]],
        facts: PaymentFacts,
        status: PaymentStatus,
        captured_at: datetime | None,
        answered: tuple[str, ...],
        notify_channel: str | None,
    ) -> None:
        """One statement for what an outcome event changes: its timeline row (`event`:
        message id, type, time, details; a duplicate is dropped), the merged facts and derived
        status, the columns its details set, the pending operation it answered, and, with
        `notify_channel`, a NOTIFY of the payment id (delivered at commit)."""
        message_id, event_type, occurred_at, details = event
        extra = outcome_columns(details)
        first = 18
        assignments = "".join(
            f", {name} = ${i}{_OUTCOME_CASTS.get(name, '')}"
            for i, name in enumerate(extra, start=first)
        )
        returning = (
            f" RETURNING pg_notify(${first + len(extra)}, id::text)" if notify_channel else ""
        )
        await self.conn.execute(
            "WITH timeline AS (INSERT INTO payment_events "  # noqa: S608 - whitelisted names
            "(message_id, payment_id, type, occurred_at, details) "
            "VALUES ($12, $1, $13, $14, $15::jsonb) ON CONFLICT DO NOTHING) "
            "UPDATE payments SET action_required = $2, authorized = $3, declined = $4, "
            "captured_amount = $5, voided = $6, expired = $7, settled = $8, "
            "refunded_amount = $9, status = $10, status_rank = $11, "
            "captured_at = COALESCE(captured_at, $16), "
            "pending_operation = CASE WHEN pending_operation = ANY($17::text[]) THEN NULL "
            f"ELSE pending_operation END, updated_at = now(){assignments} WHERE id = $1"
            f"{returning}",
            payment_id,
            facts.action_required,
            facts.authorized,
            facts.declined,
            facts.captured_amount,
            facts.voided,
            facts.expired,
            facts.settled,
            facts.refunded_amount,
            status.value,
            rank(status),
            message_id,
            event_type,
            occurred_at,
            json.dumps(details),
            captured_at,
            list(answered),
            *extra.values(),
            *([notify_channel] if notify_channel else []),
        )

    async def set_pending_operation(self, payment_id: uuid.UUID, operation: str) -> None:
        await self.conn.execute(
            "UPDATE payments SET pending_operation = $2, updated_at = now() WHERE id = $1",
            payment_id,
            operation,
        )

    async def succeeded_refunds(self, payment_id: uuid.UUID) -> dict[uuid.UUID, int]:
        rows = await self.conn.fetch(
            "SELECT id, amount FROM refunds WHERE payment_id = $1 AND status = 'succeeded'",
            payment_id,
        )
        return {r["id"]: r["amount"] for r in rows}

    async def committed_refund_total(self, payment_id: uuid.UUID) -> int:
        """Refunds that have not failed: pending ones hold their amount."""
        total = await self.conn.fetchval(
            "SELECT COALESCE(SUM(amount), 0) FROM refunds "
            "WHERE payment_id = $1 AND status <> 'failed'",
            payment_id,
        )
        return int(total)

    async def add_refund(self, refund: dict[str, Any]) -> None:
        await self.conn.execute(
            "INSERT INTO refunds (id, payment_id, amount, currency, reason, status, created_at, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
            refund["id"],
            refund["payment_id"],
            refund["amount"],
            refund["currency"],
            refund["reason"],
            refund["created_at"],
        )

    async def refund_succeeded(
        self,
        refund_id: uuid.UUID,
        payment_id: uuid.UUID,
        amount: int,
        currency: str,
        reason: str,
    ) -> None:
        """Marks the refund succeeded (whatever it was: the money moved), recording it when
        it was requested some other way."""
        await self.conn.execute(
            "INSERT INTO refunds (id, payment_id, amount, currency, reason, status) "
            "VALUES ($1, $2, $3, $4, $5, 'succeeded') ON CONFLICT (id) DO UPDATE "
            "SET status = 'succeeded', failure_reason = NULL, updated_at = now()",
            refund_id,
            payment_id,
            amount,
            currency,
            reason,
        )

    async def refund_failed(self, refund_id: uuid.UUID, reason: str) -> None:
        """Frees the amount of a refund authorization refused (a succeeded one stays)."""
        await self.conn.execute(
            "UPDATE refunds SET status = 'failed', failure_reason = $2, updated_at = now() "
            "WHERE id = $1 AND status = 'pending'",
            refund_id,
            reason,
        )

    async def refunds(self, payment_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT id, payment_id, amount, currency, reason, status, failure_reason, "
            "created_at, updated_at FROM refunds WHERE payment_id = $1 ORDER BY created_at, id",
            payment_id,
        )

    async def merchant_cutoff(self, merchant_id: str) -> asyncpg.Record:
        row = await self.conn.fetchrow(
            "SELECT time_zone, cutoff_time FROM merchants WHERE id = $1", merchant_id
        )
        assert row is not None  # the caller authenticated as this merchant
        return row
