"""The one-statement path of the payment events writes exactly what the transactional
handler writes: the same events go through each, on a private schema with no service
running on it, and every row they leave is compared."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel, SecretStr

from notification.bootstrap import CONSUMER, MIGRATIONS, consumer_handler, endpoint_secrets
from notification.config import NotificationSettings
from notification.domain.signing import generate_secret
from notification.service_layer.payment_events import PaymentEventHandler
from sanalpos_common import topics
from sanalpos_common.crypto.webhook_secrets import seal_webhook_secret
from sanalpos_common.db import create_pool, migrate
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    EncryptedCard,
    MerchantUpdated,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentInitiated,
    PaymentRefunded,
    PaymentVoided,
    Shopper,
    WebhookEndpointRegistered,
    correlation_id_of,
)

from .conftest import BASE_DSN, INTAKE_KEYRING

MERCHANT = "m-equivalence"
Event = tuple[str, Envelope[Any]]

# Every row a payment event may write, in a fixed order, without the columns the database
# fills in (times) or the workers change later (status, attempts).
SNAPSHOTS = {
    "inbox": "SELECT consumer, message_id, topic FROM inbox ORDER BY message_id",
    "webhook_deliveries": (
        "SELECT id, endpoint_id, merchant_id, payment_id, message_id, event_type, body, "
        "traceparent, status, attempts FROM webhook_deliveries ORDER BY id"
    ),
    "shopper_emails": (
        "SELECT id, message_id, payment_id, merchant_id, kind, locale, to_address, to_name, "
        "subject, text_body, html_body, traceparent, status FROM shopper_emails ORDER BY id"
    ),
    "shopper_emails_waiting": (
        "SELECT message_id, payment_id, event FROM shopper_emails_waiting ORDER BY message_id"
    ),
    "shopper_payments": (
        "SELECT payment_id, merchant_id, amount, currency, capture, installments, card_brand, "
        "card_last4, created_at, shopper_email, shopper_name, shopper_locale "
        "FROM shopper_payments ORDER BY payment_id"
    ),
}


@pytest.fixture
async def handler() -> AsyncIterator[tuple[PaymentEventHandler, asyncpg.Pool]]:
    schema = f"notification_equivalence_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    dsn = f"{BASE_DSN}?search_path={schema}"
    pool = await create_pool(dsn, max_size=2)
    try:
        await migrate(pool, CONSUMER, MIGRATIONS)
        settings = NotificationSettings(database_url=SecretStr(dsn))
        yield consumer_handler(pool, settings, endpoint_secrets(settings)), pool
    finally:
        await pool.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def _envelope(topic: str, payload: BaseModel) -> Event:
    envelope = new_envelope(
        topic, payload, correlation_id=correlation_id_of(payload), producer="tests"
    )
    return topic, envelope


def _initiated(payment_id: uuid.UUID, *, capture: bool, email: str | None) -> Event:
    return _envelope(
        topics.PAYMENT_INITIATED,
        PaymentInitiated(
            payment_id=payment_id,
            merchant_id=MERCHANT,
            amount=30_000,
            currency="TRY",
            capture=capture,
            installments=2,
            card=EncryptedCard(
                pan_ciphertext="v1:not-a-real-ciphertext",
                fingerprint="f" * 64,
                bin="41111111",
                last4="1111",
                exp_month=12,
                exp_year=2031,
                brand="visa",
            ),
            created_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
            shopper=Shopper(email=email, name="Deniz", locale="en") if email else None,
        ),
    )


def _authorized(payment_id: uuid.UUID, *, capture: bool) -> Event:
    return _envelope(
        topics.PAYMENT_AUTHORIZED,
        PaymentAuthorized(
            payment_id=payment_id,
            merchant_id=MERCHANT,
            amount=30_000,
            currency="TRY",
            auth_code="A1B2C3",
            response_code="00",
            installments=2,
            capture=capture,
        ),
    )


def _captured(payment_id: uuid.UUID) -> Event:
    return _envelope(
        topics.PAYMENT_CAPTURED,
        PaymentCaptured(
            payment_id=payment_id,
            merchant_id=MERCHANT,
            amount=30_000,
            currency="TRY",
            installments=2,
            auth_code="A1B2C3",
        ),
    )


def _events() -> list[Event]:
    """A sale told by webhook and email, then voided and refunded (twice delivered); a
    pre-authorization; a sale without an email address; a capture read before its payment;
    a decline."""
    sale, hold, quiet, early, declined = (uuid.uuid4() for _ in range(5))
    refunded = _envelope(
        topics.PAYMENT_REFUNDED,
        PaymentRefunded(
            refund_id=uuid.uuid4(),
            payment_id=sale,
            merchant_id=MERCHANT,
            amount=5_000,
            currency="TRY",
            reason="returned",
        ),
    )
    voided = _envelope(
        topics.PAYMENT_VOIDED,
        PaymentVoided(
            payment_id=hold,
            merchant_id=MERCHANT,
            amount=30_000,
            currency="TRY",
            after_capture=False,
        ),
    )
    decline = _envelope(
        topics.PAYMENT_DECLINED,
        PaymentDeclined(
            payment_id=declined,
            merchant_id=MERCHANT,
            amount=30_000,
            currency="TRY",
            response_code="51",
            reason="insufficient funds",
            declined_by="issuer",
        ),
    )
    return [
        _initiated(sale, capture=True, email="sale@shopper.test"),
        _authorized(sale, capture=True),
        _captured(sale),
        refunded,
        refunded,
        _initiated(hold, capture=False, email="hold@shopper.test"),
        _authorized(hold, capture=False),
        voided,
        _initiated(quiet, capture=True, email=None),
        _authorized(quiet, capture=True),
        _captured(quiet),
        _captured(early),
        _initiated(early, capture=True, email="early@shopper.test"),
        _initiated(declined, capture=True, email="declined@shopper.test"),
        decline,
    ]


async def _setup(handler: PaymentEventHandler) -> None:
    """The merchant's name, and two endpoints of which one is disabled (transactional)."""
    _, updated = _envelope(
        topics.MERCHANT_UPDATED,
        MerchantUpdated(
            merchant_id=MERCHANT,
            name="Equal Shop",
            settlement_currency="TRY",
            time_zone="Europe/Istanbul",
            cutoff_time=time(23, 59),
            fee_plan="standard",
            version=1,
        ),
    )
    await handler(topics.MERCHANT_UPDATED, updated)
    for enabled in (True, False):
        endpoint_id = uuid.uuid4()
        registration = WebhookEndpointRegistered(
            endpoint_id=endpoint_id,
            merchant_id=MERCHANT,
            url=f"https://hooks-{endpoint_id.hex[:6]}.example.com/in",
            secret_ciphertext=seal_webhook_secret(
                INTAKE_KEYRING, generate_secret(), MERCHANT, endpoint_id
            ),
            enabled=enabled,
        )
        _, envelope = _envelope(topics.WEBHOOK_ENDPOINT_REGISTERED, registration)
        await handler(topics.WEBHOOK_ENDPOINT_REGISTERED, envelope)


async def _snapshot(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    return {name: [dict(r) for r in await pool.fetch(sql)] for name, sql in SNAPSHOTS.items()}


async def _forget(pool: asyncpg.Pool, events: list[Event]) -> None:
    ids = [envelope.message_id for _, envelope in events]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM inbox WHERE message_id = ANY($1)", ids)
        for table in ("webhook_deliveries", "shopper_emails", "shopper_emails_waiting"):
            await conn.execute(f"DELETE FROM {table}")  # noqa: S608 - constant names
        await conn.execute("DELETE FROM shopper_payments")


async def test_one_statement_per_event_writes_what_the_transaction_writes(
    handler: tuple[PaymentEventHandler, asyncpg.Pool],
) -> None:
    handle, pool = handler
    await _setup(handle)
    events = _events()
    for topic, envelope in events:
        await handle.transactional(topic, envelope)
    transactional = await _snapshot(pool)
    await _forget(pool, events)
    for topic, envelope in events:
        await handle(topic, envelope)
    one_statement = await _snapshot(pool)

    assert one_statement == transactional
    # and the comparison is not vacuous: every kind of row is there
    deliveries = transactional["webhook_deliveries"]
    assert len(deliveries) == 9  # one per outcome (not the copy), to the enabled endpoint
    emails = sorted(r["kind"] for r in transactional["shopper_emails"])
    assert emails == ["preauthorization", "receipt", "receipt", "refund", "void_hold"]
    assert transactional["shopper_emails_waiting"] == []
    assert len(transactional["shopper_payments"]) == 5
    assert len(transactional["inbox"]) == len(events) - 1 + 3  # a copy; setup's three
