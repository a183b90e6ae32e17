"""Postgres access for endpoints, deliveries and attempts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from notification.adapters.endpoint_secrets import EndpointSecrets
from notification.domain.retry import DeliveryStatus
from notification.domain.webhooks import Endpoint, NewDelivery
from sanalpos_common import tracing
from sanalpos_common.db import Connection

DELIVERY_CHANNEL = "sanalpos_webhook_deliveries"

_ENDPOINT_COLUMNS = (
    "endpoint_id, merchant_id, url, secret_ciphertext, enabled, previous_secret_ciphertext, "
    "previous_secret_expires_at"
)


def _endpoint(row: asyncpg.Record, secrets: EndpointSecrets) -> Endpoint:
    merchant_id, endpoint_id = row["merchant_id"], row["endpoint_id"]
    previous = row["previous_secret_ciphertext"]
    return Endpoint(
        endpoint_id=endpoint_id,
        merchant_id=merchant_id,
        url=row["url"],
        secret=secrets.open_or_empty(row["secret_ciphertext"], merchant_id, endpoint_id),
        enabled=row["enabled"],
        previous_secret=None
        if previous is None
        else secrets.open_or_empty(previous, merchant_id, endpoint_id),
        previous_secret_expires_at=row["previous_secret_expires_at"],
    )


class WebhookRepository:
    """Used inside a handler's unit of work (the same transaction as the inbox row)."""

    def __init__(self, conn: Connection, secrets: EndpointSecrets) -> None:
        self.conn = conn
        self.secrets = secrets

    async def upsert_endpoint(
        self, endpoint: Endpoint, *, source: str, rotation_grace_s: float
    ) -> None:
        """Insert or replace by endpoint_id, the secret sealed. A changed secret keeps the
        old one for the grace. Ciphertexts differ on every sealing, so "changed" is decided
        on the opened secret."""
        sealed = self.secrets.seal(endpoint.secret, endpoint.merchant_id, endpoint.endpoint_id)
        inserted = await self.conn.fetchval(
            "INSERT INTO webhook_endpoints "
            "(endpoint_id, merchant_id, url, secret_ciphertext, enabled, source) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint_id) DO NOTHING RETURNING 1",
            endpoint.endpoint_id,
            endpoint.merchant_id,
            endpoint.url,
            sealed,
            endpoint.enabled,
            source,
        )
        if inserted:
            return
        row = await self.conn.fetchrow(
            "SELECT merchant_id, secret_ciphertext, previous_secret_ciphertext, "
            "previous_secret_expires_at FROM webhook_endpoints WHERE endpoint_id = $1 FOR UPDATE",
            endpoint.endpoint_id,
        )
        assert row is not None  # inserted or present: rows are never deleted
        current = self.secrets.open_or_empty(
            row["secret_ciphertext"], row["merchant_id"], endpoint.endpoint_id
        )
        same_secret = current == endpoint.secret and row["merchant_id"] == endpoint.merchant_id
        if same_secret:
            secret, previous = row["secret_ciphertext"], row["previous_secret_ciphertext"]
            previous_expires = row["previous_secret_expires_at"]
        else:
            secret, previous = sealed, None
            previous_expires = None
            if current and row["merchant_id"] == endpoint.merchant_id:
                previous = row["secret_ciphertext"]
                previous_expires = await self.conn.fetchval(
                    "SELECT now() + make_interval(secs => $1)", rotation_grace_s
                )
        await self.conn.execute(
            """
            UPDATE webhook_endpoints SET
                merchant_id = $2, url = $3, enabled = $4, source = $5,
                secret_ciphertext = $6, previous_secret_ciphertext = $7,
                previous_secret_expires_at = $8, updated_at = now()
            WHERE endpoint_id = $1
            """,
            endpoint.endpoint_id,
            endpoint.merchant_id,
            endpoint.url,
            endpoint.enabled,
            source,
            secret,
            previous,
            previous_expires,
        )

    async def enabled_endpoints(self, merchant_id: str) -> list[Endpoint]:
        rows = await self.conn.fetch(
            f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints "  # noqa: S608 - constant
            "WHERE merchant_id = $1 AND enabled ORDER BY endpoint_id",
            merchant_id,
        )
        return [_endpoint(r, self.secrets) for r in rows]

    async def add_deliveries(self, deliveries: Sequence[NewDelivery]) -> int:
        """Insert pending deliveries, due now; an existing one (same id) is left alone."""
        if not deliveries:
            return 0
        inserted = await self.conn.fetch(
            """
            INSERT INTO webhook_deliveries
                (id, endpoint_id, merchant_id, payment_id, message_id, event_type, body,
                 traceparent)
            SELECT *, $8::text FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[],
                                           $5::uuid[], $6::text[], $7::text[])
            ON CONFLICT DO NOTHING
            RETURNING id
            """,
            [d.id for d in deliveries],
            [d.endpoint_id for d in deliveries],
            [d.merchant_id for d in deliveries],
            [d.payment_id for d in deliveries],
            [d.message_id for d in deliveries],
            [d.event_type for d in deliveries],
            [d.body for d in deliveries],
            tracing.current_traceparent(),  # the handler's span: the POSTs are its children
        )
        if inserted:
            # Delivered by Postgres only when the transaction commits: wakes the worker.
            await self.conn.execute("SELECT pg_notify($1, '')", DELIVERY_CHANNEL)
        return len(inserted)


@dataclass(frozen=True)
class ClaimedDelivery:
    id: uuid.UUID
    payment_id: uuid.UUID
    event_type: str
    body: str
    attempt: int
    """The number of this attempt (1-based); also the fencing token for recording it."""
    endpoint: Endpoint
    created_at: datetime | None = None
    """When the delivery was queued (its age is exported when it reaches a final state)."""
    traceparent: str | None = None


@dataclass(frozen=True)
class AttemptRecord:
    delivery_id: uuid.UUID
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime
    status: DeliveryStatus
    next_attempt_at: datetime | None


class DeliveryStore:
    """The delivery worker's queries. Each is one short transaction; none spans an HTTP call."""

    def __init__(self, pool: asyncpg.Pool, secrets: EndpointSecrets) -> None:
        self.pool = pool
        self.secrets = secrets

    async def claim(self, limit: int, lease_s: float) -> list[ClaimedDelivery]:
        """Take up to `limit` due deliveries. The claim is a lease: their due time moves
        `lease_s` ahead, so if this worker dies they come due again for anyone."""
        if limit <= 0:
            return []
        rows = await self.pool.fetch(
            f"""
            WITH due AS (
                SELECT id FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE webhook_deliveries d
                SET attempts = d.attempts + 1,
                    next_attempt_at = now() + make_interval(secs => $2),
                    updated_at = now()
                FROM due WHERE d.id = due.id
                RETURNING d.id, d.payment_id, d.event_type, d.body, d.attempts, d.endpoint_id,
                          d.created_at, d.traceparent
            )
            SELECT c.id, c.payment_id, c.event_type, c.body, c.attempts, c.created_at,
                   c.traceparent,
                   {", ".join(f"e.{c.strip()}" for c in _ENDPOINT_COLUMNS.split(","))}
            FROM claimed c JOIN webhook_endpoints e ON e.endpoint_id = c.endpoint_id
            """,  # noqa: S608 - only constant column names are interpolated
            limit,
            lease_s,
        )
        return [
            ClaimedDelivery(
                id=r["id"],
                payment_id=r["payment_id"],
                event_type=r["event_type"],
                body=r["body"],
                attempt=r["attempts"],
                endpoint=_endpoint(r, self.secrets),
                created_at=r["created_at"],
                traceparent=r["traceparent"],
            )
            for r in rows
        ]

    async def record(self, record: AttemptRecord) -> bool:
        """Log the attempt and move the delivery on. False when the claim was lost (the
        lease ran out and another attempt started), in which case nothing is changed."""
        async with self.pool.acquire() as conn, conn.transaction():
            updated = await conn.fetchval(
                """
                UPDATE webhook_deliveries
                SET status = $3,
                    next_attempt_at = COALESCE($4, next_attempt_at),
                    last_status_code = $5,
                    last_error = $6,
                    updated_at = now(),
                    completed_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
                WHERE id = $1 AND attempts = $2 AND status = 'pending'
                RETURNING 1
                """,
                record.delivery_id,
                record.attempt,
                record.status.value,
                record.next_attempt_at,
                record.status_code,
                record.error,
            )
            await conn.execute(
                "INSERT INTO webhook_attempts "
                "(delivery_id, attempt, status_code, error, duration_ms, attempted_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (delivery_id, attempt) DO NOTHING",
                record.delivery_id,
                record.attempt,
                record.status_code,
                record.error,
                record.duration_ms,
                record.attempted_at,
            )
        return updated is not None

    async def cancel(self, delivery_id: uuid.UUID, attempt: int, reason: str) -> None:
        await self.pool.execute(
            "UPDATE webhook_deliveries SET status = 'cancelled', attempts = attempts - 1, "
            "last_error = $3, updated_at = now(), completed_at = now() "
            "WHERE id = $1 AND attempts = $2 AND status = 'pending'",
            delivery_id,
            attempt,
            reason,
        )

    async def seconds_until_next_due(self) -> float | None:
        """None when nothing is pending; 0 when something is already due."""
        # Not GREATEST(0, ...) in SQL: GREATEST ignores NULL, so "nothing pending" would read
        # as "due now" and the worker would spin.
        value = await self.pool.fetchval(
            "SELECT EXTRACT(EPOCH FROM (min(next_attempt_at) - now())) "
            "FROM webhook_deliveries WHERE status = 'pending'"
        )
        return None if value is None else max(0.0, float(value))

    async def pending(self) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
        )
        return int(value)


async def seal_waiting_secrets(pool: asyncpg.Pool, secrets: EndpointSecrets) -> int:
    """Seals the secrets migration 0002 took out of webhook_endpoints in clear, and deletes
    them: run at start-up, before anything consumes or delivers."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT w.endpoint_id, w.secret, w.previous_secret, e.merchant_id "
            "FROM webhook_secrets_to_seal w JOIN webhook_endpoints e USING (endpoint_id) "
            "FOR UPDATE OF w"
        )
        for row in rows:
            merchant_id, endpoint_id = row["merchant_id"], row["endpoint_id"]
            previous = row["previous_secret"]
            await conn.execute(
                "UPDATE webhook_endpoints SET secret_ciphertext = $2, "
                "previous_secret_ciphertext = $3 WHERE endpoint_id = $1",
                endpoint_id,
                secrets.seal(row["secret"], merchant_id, endpoint_id),
                None if previous is None else secrets.seal(previous, merchant_id, endpoint_id),
            )
            await conn.execute(
                "DELETE FROM webhook_secrets_to_seal WHERE endpoint_id = $1", endpoint_id
            )
    return len(rows)
