"""Postgres access for shopper emails: the payments and merchants they need, the emails
themselves (an outbox the email worker drains) and every attempt."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from notification.domain.shopper_emails import Merchant, NewEmail, ShopperPayment, Trigger
from sanalpos_common import tracing
from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import MerchantUpdated

EMAIL_CHANNEL = "sanalpos_shopper_emails"


def shopper_payment_of(row: asyncpg.Record | None) -> ShopperPayment | None:
    """A shopper_payments row (its columns by name); None for no row, or a LEFT JOIN's
    NULLs."""
    if row is None or row["payment_id"] is None:
        return None
    return ShopperPayment(
        payment_id=row["payment_id"],
        merchant_id=row["merchant_id"],
        amount=row["amount"],
        currency=row["currency"],
        capture=row["capture"],
        installments=row["installments"],
        card_brand=row["card_brand"],
        card_last4=row["card_last4"],
        created_at=row["created_at"],
        email=row["shopper_email"],
        name=row["shopper_name"],
        locale=row["shopper_locale"],
    )


class ShopperEmailRepository:
    """Used inside a handler's unit of work (the same transaction as the inbox row)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add_payment(self, payment: ShopperPayment) -> None:
        await self.conn.execute(
            """
            INSERT INTO shopper_payments
                (payment_id, merchant_id, amount, currency, capture, installments, card_brand,
                 card_last4, created_at, shopper_email, shopper_name, shopper_locale)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (payment_id) DO NOTHING
            """,
            payment.payment_id,
            payment.merchant_id,
            payment.amount,
            payment.currency,
            payment.capture,
            payment.installments,
            payment.card_brand,
            payment.card_last4,
            payment.created_at,
            payment.email,
            payment.name,
            payment.locale,
        )

    async def payment(self, payment_id: uuid.UUID) -> ShopperPayment | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM shopper_payments WHERE payment_id = $1", payment_id
        )
        return shopper_payment_of(row)

    async def upsert_merchant(self, event: MerchantUpdated) -> None:
        """Versions may arrive in any order (redelivery, replays): an older one is ignored."""
        await self.conn.execute(
            """
            INSERT INTO merchants (merchant_id, name, time_zone, version)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (merchant_id) DO UPDATE
            SET name = EXCLUDED.name, time_zone = EXCLUDED.time_zone,
                version = EXCLUDED.version, updated_at = now()
            WHERE merchants.version < EXCLUDED.version
            """,
            event.merchant_id,
            event.name,
            event.time_zone,
            event.version,
        )

    async def merchant(self, merchant_id: str) -> Merchant | None:
        row = await self.conn.fetchrow(
            "SELECT name, time_zone FROM merchants WHERE merchant_id = $1", merchant_id
        )
        return None if row is None else Merchant(name=row["name"], time_zone=row["time_zone"])

    async def add_waiting(self, trigger: Trigger) -> None:
        await self.conn.execute(
            "INSERT INTO shopper_emails_waiting (message_id, payment_id, event) "
            "VALUES ($1, $2, $3::jsonb) ON CONFLICT (message_id) DO NOTHING",
            trigger.message_id,
            trigger.payment_id,
            trigger.to_json(),
        )

    async def take_waiting(self, payment_id: uuid.UUID) -> list[Trigger]:
        rows = await self.conn.fetch(
            "DELETE FROM shopper_emails_waiting WHERE payment_id = $1 RETURNING event::text",
            payment_id,
        )
        triggers = [Trigger.from_json(r["event"]) for r in rows]
        return sorted(triggers, key=lambda t: t.occurred_at)

    async def take_resolvable(self, limit: int) -> list[Trigger]:
        """Waiting outcomes whose payment is there after all (see handlers.resolve_waiting);
        rows another transaction holds are skipped."""
        rows = await self.conn.fetch(
            """
            DELETE FROM shopper_emails_waiting WHERE message_id IN (
                SELECT w.message_id FROM shopper_emails_waiting w
                JOIN shopper_payments p USING (payment_id)
                ORDER BY w.received_at LIMIT $1
                FOR UPDATE OF w SKIP LOCKED
            )
            RETURNING event::text
            """,
            limit,
        )
        triggers = [Trigger.from_json(r["event"]) for r in rows]
        return sorted(triggers, key=lambda t: t.occurred_at)

    async def add_email(self, email: NewEmail) -> bool:
        """Pending, due now; False when this event's email exists already."""
        inserted = await self.conn.fetchval(
            """
            INSERT INTO shopper_emails
                (id, message_id, payment_id, merchant_id, kind, locale, to_address, to_name,
                 subject, text_body, html_body, traceparent)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT DO NOTHING
            RETURNING 1
            """,
            email.id,
            email.message_id,
            email.payment_id,
            email.merchant_id,
            email.kind.value,
            email.locale,
            email.to_address,
            email.to_name,
            email.subject,
            email.text_body,
            email.html_body,
            tracing.current_traceparent(),
        )
        if inserted:
            # Delivered by Postgres only when the transaction commits: wakes the worker.
            await self.conn.execute("SELECT pg_notify($1, '')", EMAIL_CHANNEL)
        return inserted is not None


@dataclass(frozen=True)
class ClaimedEmail:
    id: uuid.UUID
    payment_id: uuid.UUID
    kind: str
    locale: str
    to_address: str
    to_name: str | None
    subject: str
    text_body: str
    html_body: str
    attempt: int
    """The number of this attempt (1-based); also the fencing token for recording it."""
    created_at: datetime
    traceparent: str | None = None


@dataclass(frozen=True)
class EmailAttempt:
    email_id: uuid.UUID
    attempt: int
    smtp_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime
    status: str
    """pending (retry at next_attempt_at), sent or failed."""
    next_attempt_at: datetime | None


class EmailOutbox:
    """The email worker's queries. Each is one short transaction; none spans an SMTP call."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, limit: int, lease_s: float) -> list[ClaimedEmail]:
        """Take up to `limit` due emails; the claim is a lease (see DeliveryStore.claim)."""
        if limit <= 0:
            return []
        rows = await self.pool.fetch(
            """
            WITH due AS (
                SELECT id FROM shopper_emails
                WHERE status = 'pending' AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE shopper_emails e
            SET attempts = e.attempts + 1,
                next_attempt_at = now() + make_interval(secs => $2),
                updated_at = now()
            FROM due WHERE e.id = due.id
            RETURNING e.id, e.payment_id, e.kind, e.locale, e.to_address, e.to_name, e.subject,
                      e.text_body, e.html_body, e.attempts, e.created_at, e.traceparent
            """,
            limit,
            lease_s,
        )
        return [
            ClaimedEmail(
                id=r["id"],
                payment_id=r["payment_id"],
                kind=r["kind"],
                locale=r["locale"],
                to_address=r["to_address"],
                to_name=r["to_name"],
                subject=r["subject"],
                text_body=r["text_body"],
                html_body=r["html_body"],
                attempt=r["attempts"],
                created_at=r["created_at"],
                traceparent=r["traceparent"],
            )
            for r in rows
        ]

    async def record(self, attempt: EmailAttempt) -> bool:
        """Log the attempt and move the email on; False (nothing changed) when the claim was
        lost to a newer attempt."""
        async with self.pool.acquire() as conn, conn.transaction():
            updated = await conn.fetchval(
                """
                UPDATE shopper_emails
                SET status = $3,
                    next_attempt_at = COALESCE($4, next_attempt_at),
                    last_smtp_code = $5,
                    last_error = $6,
                    updated_at = now(),
                    sent_at = CASE WHEN $3 = 'sent' THEN now() END,
                    completed_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END
                WHERE id = $1 AND attempts = $2 AND status = 'pending'
                RETURNING 1
                """,
                attempt.email_id,
                attempt.attempt,
                attempt.status,
                attempt.next_attempt_at,
                attempt.smtp_code,
                attempt.error,
            )
            if updated is not None:
                await conn.execute(
                    "INSERT INTO shopper_email_attempts "
                    "(email_id, attempt, smtp_code, error, duration_ms, attempted_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_id, attempt) DO NOTHING",
                    attempt.email_id,
                    attempt.attempt,
                    attempt.smtp_code,
                    attempt.error,
                    attempt.duration_ms,
                    attempt.attempted_at,
                )
        return updated is not None

    async def seconds_until_next_due(self) -> float | None:
        value = await self.pool.fetchval(
            "SELECT EXTRACT(EPOCH FROM (min(next_attempt_at) - now())) "
            "FROM shopper_emails WHERE status = 'pending'"
        )
        return None if value is None else max(0.0, float(value))

    async def pending(self) -> int:
        value = await self.pool.fetchval(
            "SELECT count(*) FROM shopper_emails WHERE status = 'pending'"
        )
        return int(value)

    async def purge_waiting(self, older_than_h: float) -> int:
        """Outcomes whose payment.initiated never came (a payment from before notification
        kept payments, or one whose record left the topic): nothing to write them with."""
        result = await self.pool.execute(
            "DELETE FROM shopper_emails_waiting "
            "WHERE received_at < now() - make_interval(secs => $1)",
            older_than_h * 3600,
        )
        return int(result.split()[-1])
