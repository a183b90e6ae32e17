"""Finished deliveries and emails leave with their attempts after the retention; pending and
recent ones stay."""

from __future__ import annotations

import uuid

import asyncpg
from prometheus_client import CollectorRegistry

from notification.adapters.history_purge import HistoryPurge, purged_counter

from .conftest import Service

DAY_S = 86_400


async def _endpoint(conn: asyncpg.Connection, merchant: str) -> uuid.UUID:
    endpoint = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_endpoints (endpoint_id, merchant_id, url, source, secret_ciphertext)"
        " VALUES ($1, $2, 'https://shop.example/hooks', 'static', 'sealed')",
        endpoint,
        merchant,
    )
    return endpoint


async def _delivery(
    conn: asyncpg.Connection, endpoint: uuid.UUID, merchant: str, status: str, days_ago: float
) -> uuid.UUID:
    delivery = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_deliveries (id, endpoint_id, merchant_id, payment_id, message_id,"
        " event_type, body, status, attempts, next_attempt_at, created_at, completed_at)"
        " VALUES ($1, $2, $3, $4, $5, 'payment.captured', '{}', $6, 1,"
        " now() + interval '1 day', now() - make_interval(secs => $7),"
        " CASE WHEN $6 = 'pending' THEN NULL ELSE now() - make_interval(secs => $7) END)",
        delivery,
        endpoint,
        merchant,
        uuid.uuid4(),
        uuid.uuid4(),
        status,
        days_ago * DAY_S,
    )
    await conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms)"
        " VALUES ($1, 1, 200, 12)",
        delivery,
    )
    return delivery


async def _email(
    conn: asyncpg.Connection, merchant: str, status: str, days_ago: float
) -> uuid.UUID:
    email = uuid.uuid4()
    await conn.execute(
        "INSERT INTO shopper_emails (id, message_id, payment_id, merchant_id, kind, locale,"
        " to_address, subject, text_body, html_body, status, attempts, next_attempt_at,"
        " created_at, completed_at)"
        " VALUES ($1, $2, $3, $4, 'receipt', 'en', 'ayse@example.com', 'Your receipt', 't',"
        " '<p>t</p>', $5, 1, now() + interval '1 day', now() - make_interval(secs => $6),"
        " CASE WHEN $5 = 'pending' THEN NULL ELSE now() - make_interval(secs => $6) END)",
        email,
        uuid.uuid4(),
        uuid.uuid4(),
        merchant,
        status,
        days_ago * DAY_S,
    )
    await conn.execute(
        "INSERT INTO shopper_email_attempts (email_id, attempt, smtp_code, duration_ms)"
        " VALUES ($1, 1, 250, 8)",
        email,
    )
    return email


async def test_finished_history_past_the_retention_is_deleted_with_its_attempts(
    service: Service,
) -> None:
    merchant = f"m-{uuid.uuid4().hex[:12]}"
    async with service.pool.acquire() as conn:
        endpoint = await _endpoint(conn, merchant)
        old_deliveries = [
            await _delivery(conn, endpoint, merchant, status, 120)
            for status in ("delivered", "failed", "cancelled")
        ]
        kept_deliveries = [
            await _delivery(conn, endpoint, merchant, "delivered", 30),
            await _delivery(conn, endpoint, merchant, "pending", 400),
        ]
        old_emails = [await _email(conn, merchant, status, 91) for status in ("sent", "failed")]
        kept_emails = [
            await _email(conn, merchant, "sent", 89),
            await _email(conn, merchant, "pending", 400),
        ]

    # Batches of two: the loop goes on until a batch comes back short.
    registry = CollectorRegistry()
    deleted = await HistoryPurge(
        service.pool, retention_days=90, batch_size=2, purged=purged_counter(registry)
    ).purge()

    assert deleted == {"webhook_deliveries": 3, "shopper_emails": 2}
    metric = "sanalpos_notification_history_purged_total"
    assert registry.get_sample_value(metric, {"table": "webhook_deliveries"}) == 3
    assert registry.get_sample_value(metric, {"table": "shopper_emails"}) == 2
    async with service.pool.acquire() as conn:
        deliveries = await conn.fetch(
            "SELECT id FROM webhook_deliveries WHERE merchant_id = $1", merchant
        )
        assert {row["id"] for row in deliveries} == set(kept_deliveries)
        attempts = await conn.fetch(
            "SELECT delivery_id FROM webhook_attempts WHERE delivery_id = ANY($1::uuid[])",
            old_deliveries + kept_deliveries,
        )
        assert {row["delivery_id"] for row in attempts} == set(kept_deliveries)
        emails = await conn.fetch("SELECT id FROM shopper_emails WHERE merchant_id = $1", merchant)
        assert {row["id"] for row in emails} == set(kept_emails)
        email_attempts = await conn.fetch(
            "SELECT email_id FROM shopper_email_attempts WHERE email_id = ANY($1::uuid[])",
            old_emails + kept_emails,
        )
        assert {row["email_id"] for row in email_attempts} == set(kept_emails)

    again = await HistoryPurge(service.pool, retention_days=90).purge()
    assert again == {"webhook_deliveries": 0, "shopper_emails": 0}
