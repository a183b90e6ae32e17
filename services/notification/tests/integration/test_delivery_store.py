"""The delivery queries against real PostgreSQL, in a schema of their own (no worker running)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from notification.adapters.endpoint_secrets import EndpointSecrets
from notification.adapters.repository import (
    AttemptRecord,
    DeliveryStore,
    WebhookRepository,
    seal_waiting_secrets,
)
from notification.bootstrap import MIGRATIONS
from notification.domain.retry import DeliveryStatus
from notification.domain.signing import generate_secret
from notification.domain.webhooks import Endpoint, NewDelivery
from sanalpos_common.crypto.sealed import SealedKeyring
from sanalpos_common.db import create_pool, migrate, unit_of_work

from .conftest import BASE_DSN

SECRETS = EndpointSecrets(SealedKeyring.generate("webhook"))


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    schema = f"notification_store_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    pool = await create_pool(f"{BASE_DSN}?search_path={schema}", max_size=8)
    try:
        await migrate(pool, "notification", MIGRATIONS)
        yield pool
    finally:
        await pool.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def _endpoint(pool: asyncpg.Pool, merchant: str, **changes: object) -> Endpoint:
    endpoint = Endpoint(
        endpoint_id=uuid.uuid4(),
        merchant_id=merchant,
        url="https://merchant.example/h",
        secret=generate_secret(),
    )
    endpoint = Endpoint(**{**endpoint.__dict__, **changes})  # type: ignore[arg-type]
    async with unit_of_work(pool) as uow:
        await WebhookRepository(uow.conn, SECRETS).upsert_endpoint(
            endpoint, source="event", rotation_grace_s=60
        )
    return endpoint


async def _deliveries(pool: asyncpg.Pool, endpoint: Endpoint, n: int) -> list[NewDelivery]:
    deliveries = [
        NewDelivery(
            id=uuid.uuid4(),
            endpoint_id=endpoint.endpoint_id,
            merchant_id=endpoint.merchant_id,
            payment_id=uuid.uuid4(),
            message_id=uuid.uuid4(),
            event_type="payment.captured",
            body='{"type":"payment.captured"}',
        )
        for _ in range(n)
    ]
    async with unit_of_work(pool) as uow:
        assert await WebhookRepository(uow.conn, SECRETS).add_deliveries(deliveries) == n
        assert (
            await WebhookRepository(uow.conn, SECRETS).add_deliveries(deliveries) == 0
        )  # idempotent
    return deliveries


def _result(
    delivery_id: uuid.UUID, attempt: int, status: DeliveryStatus, code: int
) -> AttemptRecord:
    return AttemptRecord(
        delivery_id=delivery_id,
        attempt=attempt,
        status_code=code,
        error=None,
        duration_ms=5,
        attempted_at=datetime.now(UTC),
        status=status,
        next_attempt_at=None,
    )


async def _drain(store: DeliveryStore) -> None:
    """Finish whatever earlier tests left due, so each test sees only its own rows."""
    await store.pool.execute(
        "UPDATE webhook_deliveries SET status = 'cancelled' WHERE status = 'pending'"
    )


async def test_lease_expiry_and_fencing(pool: asyncpg.Pool) -> None:
    store = DeliveryStore(pool, SECRETS)
    await _drain(store)
    endpoint = await _endpoint(pool, "m-lease")
    [delivery] = await _deliveries(pool, endpoint, 1)

    [first] = await store.claim(10, lease_s=0.3)
    assert first.id == delivery.id and first.attempt == 1
    assert first.endpoint.secret == endpoint.secret
    assert await store.claim(10, lease_s=0.3) == []  # leased: nobody else takes it
    due_in = await store.seconds_until_next_due()
    assert due_in is not None and 0 < due_in <= 0.3

    await asyncio.sleep(0.35)  # the first worker "died": the lease runs out
    [second] = await store.claim(10, lease_s=30)
    assert second.id == delivery.id and second.attempt == 2

    # The stale worker finally answers: its attempt is logged but cannot move the row.
    assert not await store.record(_result(delivery.id, 1, DeliveryStatus.DELIVERED, 200))
    status = await pool.fetchval("SELECT status FROM webhook_deliveries WHERE id = $1", delivery.id)
    assert status == "pending"
    assert await store.record(_result(delivery.id, 2, DeliveryStatus.DELIVERED, 200))
    row = await pool.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", delivery.id)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert row["completed_at"] is not None
    attempts = await pool.fetch(
        "SELECT attempt FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt", delivery.id
    )
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert await store.seconds_until_next_due() is None


async def test_concurrent_claims_never_share_a_delivery(pool: asyncpg.Pool) -> None:
    store = DeliveryStore(pool, SECRETS)
    await _drain(store)
    endpoint = await _endpoint(pool, "m-concurrent")
    deliveries = await _deliveries(pool, endpoint, 60)
    claims = await asyncio.gather(*(store.claim(15, lease_s=30) for _ in range(6)))
    claimed = [c.id for batch in claims for c in batch]
    assert len(claimed) == len(set(claimed)) == 60
    assert set(claimed) == {d.id for d in deliveries}
    assert await store.pending() == 60  # claimed is still pending until recorded


async def test_retry_schedule_is_respected(pool: asyncpg.Pool) -> None:
    store = DeliveryStore(pool, SECRETS)
    await _drain(store)
    endpoint = await _endpoint(pool, "m-retry")
    [delivery] = await _deliveries(pool, endpoint, 1)
    [claimed] = await store.claim(1, lease_s=30)
    retry_at = datetime.now(UTC) + timedelta(seconds=0.4)
    assert await store.record(
        AttemptRecord(
            delivery_id=delivery.id,
            attempt=claimed.attempt,
            status_code=503,
            error=None,
            duration_ms=2,
            attempted_at=datetime.now(UTC),
            status=DeliveryStatus.PENDING,
            next_attempt_at=retry_at,
        )
    )
    assert await store.claim(1, lease_s=30) == []  # not yet due
    await asyncio.sleep(0.45)
    [again] = await store.claim(1, lease_s=30)
    assert again.attempt == 2


async def test_disabled_endpoint_and_cancel(pool: asyncpg.Pool) -> None:
    store = DeliveryStore(pool, SECRETS)
    await _drain(store)
    endpoint = await _endpoint(pool, "m-cancel", enabled=False)
    [delivery] = await _deliveries(pool, endpoint, 1)
    [claimed] = await store.claim(1, lease_s=30)
    assert claimed.endpoint.enabled is False
    await store.cancel(delivery.id, claimed.attempt, "endpoint disabled")
    row = await pool.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", delivery.id)
    assert row["status"] == "cancelled" and row["attempts"] == 0


async def test_endpoint_upsert_rotation_and_enabled_filter(pool: asyncpg.Pool) -> None:
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    endpoint = await _endpoint(pool, merchant)
    off = await _endpoint(pool, merchant, enabled=False)
    rotated = Endpoint(**{**endpoint.__dict__, "secret": generate_secret()})
    for _ in range(2):  # the second identical upsert must not lose the previous secret
        async with unit_of_work(pool) as uow:
            await WebhookRepository(uow.conn, SECRETS).upsert_endpoint(
                rotated, source="event", rotation_grace_s=60
            )
    async with pool.acquire() as conn:
        [current] = await WebhookRepository(conn, SECRETS).enabled_endpoints(merchant)
    assert current.endpoint_id == endpoint.endpoint_id != off.endpoint_id
    assert current.secret == rotated.secret
    assert current.previous_secret == endpoint.secret
    assert current.previous_secret_expires_at is not None
    now = datetime.now(UTC)
    assert now + timedelta(seconds=50) < current.previous_secret_expires_at
    assert current.previous_secret_expires_at < now + timedelta(seconds=70)
    assert len(current.signing_keys(now)) == 2


async def test_secrets_are_stored_only_sealed(pool: asyncpg.Pool) -> None:
    merchant = f"m-{uuid.uuid4().hex[:8]}"
    endpoint = await _endpoint(pool, merchant)
    rotated = Endpoint(**{**endpoint.__dict__, "secret": generate_secret()})
    async with unit_of_work(pool) as uow:
        await WebhookRepository(uow.conn, SECRETS).upsert_endpoint(
            rotated, source="event", rotation_grace_s=60
        )
    row = await pool.fetchrow(
        "SELECT to_jsonb(e)::text AS r FROM webhook_endpoints e WHERE endpoint_id = $1",
        endpoint.endpoint_id,
    )
    for secret in (endpoint.secret, rotated.secret):
        assert secret.removeprefix("whsec_") not in row["r"]
    assert '"secret_ciphertext": "sp3.webhook.' in row["r"]
    assert '"previous_secret_ciphertext": "sp3.webhook.' in row["r"]


async def test_secrets_left_in_clear_by_migration_0002_are_sealed_at_start_up(
    pool: asyncpg.Pool,
) -> None:
    """A row from before 0002: its clear secrets wait in webhook_secrets_to_seal."""
    merchant, endpoint_id = f"m-{uuid.uuid4().hex[:8]}", uuid.uuid4()
    secret, previous = generate_secret(), generate_secret()
    await pool.execute(
        "INSERT INTO webhook_endpoints (endpoint_id, merchant_id, url, source, "
        "previous_secret_expires_at) VALUES ($1, $2, 'https://m.example/h', 'event', "
        "now() + interval '1 hour')",
        endpoint_id,
        merchant,
    )
    await pool.execute(
        "INSERT INTO webhook_secrets_to_seal VALUES ($1, $2, $3)", endpoint_id, secret, previous
    )
    assert await seal_waiting_secrets(pool, SECRETS) >= 1
    assert await pool.fetchval("SELECT count(*) FROM webhook_secrets_to_seal") == 0
    async with pool.acquire() as conn:
        [current] = await WebhookRepository(conn, SECRETS).enabled_endpoints(merchant)
    assert (current.secret, current.previous_secret) == (secret, previous)
