"""What one sale with capture costs notification in Postgres round trips, through the
consumer's handler exactly as bootstrap wires it, on the real database: payment.initiated,
payment.authorized and payment.captured of a merchant with a webhook endpoint and a shopper
with an email address. The counts are upper bounds: a change that adds a statement to the
common path fails here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from typing import Any

import pytest
from pydantic import BaseModel

from notification.bootstrap import consumer_handler, endpoint_secrets
from notification.service_layer.payment_events import PaymentEventHandler
from sanalpos_common import topics
from sanalpos_common.db import create_pool
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    EncryptedCard,
    MerchantUpdated,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentInitiated,
    Shopper,
    correlation_id_of,
)
from sanalpos_common.testing import StatementLog

from .conftest import Receiver, Service


@pytest.fixture
async def counted(service: Service) -> AsyncIterator[tuple[PaymentEventHandler, StatementLog]]:
    statements = StatementLog()
    dsn = service.settings.database_url.get_secret_value()
    pool = await create_pool(dsn, min_size=1, max_size=1, init=statements.attach)
    try:
        secrets = endpoint_secrets(service.settings)
        yield consumer_handler(pool, service.settings, secrets), statements
    finally:
        await pool.close()


def _envelope(topic: str, payload: BaseModel) -> Envelope[Any]:
    return new_envelope(topic, payload, correlation_id=correlation_id_of(payload), producer="tests")


def _sale(merchant: str, *, email: bool = True) -> list[tuple[str, Envelope[Any]]]:
    payment_id = uuid.uuid4()
    initiated = PaymentInitiated(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=42_000,
        currency="TRY",
        capture=True,
        installments=1,
        card=EncryptedCard(
            pan_ciphertext="v1:not-a-real-ciphertext",
            fingerprint="f" * 64,
            bin="41111111",
            last4="1111",
            exp_month=12,
            exp_year=2031,
            brand="visa",
        ),
        created_at=datetime.now(UTC),
        shopper=Shopper(email=f"{payment_id.hex[:8]}@shopper.test", name="Ayşe", locale="tr")
        if email
        else None,
    )
    authorized = PaymentAuthorized(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=42_000,
        currency="TRY",
        auth_code="A1B2C3",
        response_code="00",
        installments=1,
        capture=True,
    )
    captured = PaymentCaptured(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=42_000,
        currency="TRY",
        installments=1,
        auth_code="A1B2C3",
    )
    return [
        (topics.PAYMENT_INITIATED, _envelope(topics.PAYMENT_INITIATED, initiated)),
        (topics.PAYMENT_AUTHORIZED, _envelope(topics.PAYMENT_AUTHORIZED, authorized)),
        (topics.PAYMENT_CAPTURED, _envelope(topics.PAYMENT_CAPTURED, captured)),
    ]


async def _merchant_with_endpoint(
    service: Service, receiver: Receiver, handle: PaymentEventHandler
) -> str:
    merchant = f"m-{uuid.uuid4().hex[:12]}"
    updated = MerchantUpdated(
        merchant_id=merchant,
        name="Sayac A.S.",
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 59),
        fee_plan="standard",
        version=1,
    )
    await handle(topics.MERCHANT_UPDATED, _envelope(topics.MERCHANT_UPDATED, updated))
    await service.register_endpoint(merchant, receiver.url(f"/count/{merchant}"))
    return merchant


async def _costs(
    handle: PaymentEventHandler, statements: StatementLog, events: list[tuple[str, Envelope[Any]]]
) -> list[int]:
    costs = []
    for topic, envelope in events:
        before = await statements.mark()
        await handle(topic, envelope)
        costs.append(await statements.mark() - before)
    return costs


async def test_a_sale_with_capture_costs_five_statements(
    service: Service, receiver: Receiver, counted: tuple[PaymentEventHandler, StatementLog]
) -> None:
    handle, statements = counted
    merchant = await _merchant_with_endpoint(service, receiver, handle)
    await _costs(handle, statements, _sale(merchant))  # warms the prepared statements
    sale = _sale(merchant)
    before = await statements.mark()
    costs = await _costs(handle, statements, sale)
    # initiated: one write; authorized and captured: one read and one write each
    assert costs[0] <= 1 and costs[1] <= 2 and costs[2] <= 2, statements.queries[before:]
    assert sum(costs) <= 5

    payment_id = sale[0][1].payload.payment_id
    deliveries = await service.pool.fetch(
        "SELECT event_type FROM webhook_deliveries WHERE payment_id = $1 ORDER BY event_type",
        payment_id,
    )
    assert [r["event_type"] for r in deliveries] == ["payment.captured", "payment.succeeded"]
    emails = await service.pool.fetch(
        "SELECT kind FROM shopper_emails WHERE payment_id = $1", payment_id
    )
    assert [r["kind"] for r in emails] == ["receipt"]
    processed = await service.pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = 'notification' AND message_id = ANY($1)",
        [envelope.message_id for _, envelope in sale],
    )
    assert processed == 3


async def test_a_sale_told_to_nobody_costs_five_statements_too(
    counted: tuple[PaymentEventHandler, StatementLog], service: Service
) -> None:
    """No endpoint, no shopper email (most payments of the benchmark): the outcomes still
    write their inbox rows, so a redelivery changes nothing even if an endpoint is
    registered meanwhile."""
    handle, statements = counted
    merchant = f"m-{uuid.uuid4().hex[:12]}"
    await _costs(handle, statements, _sale(merchant, email=False))  # warms the statements
    sale = _sale(merchant, email=False)
    costs = await _costs(handle, statements, sale)
    assert costs[0] <= 1 and costs[1] <= 2 and costs[2] <= 2
    processed = await service.pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = 'notification' AND message_id = ANY($1)",
        [envelope.message_id for _, envelope in sale],
    )
    assert processed == 3


async def test_a_redelivered_outcome_writes_nothing_more(
    service: Service, receiver: Receiver, counted: tuple[PaymentEventHandler, StatementLog]
) -> None:
    handle, statements = counted
    merchant = await _merchant_with_endpoint(service, receiver, handle)
    sale = _sale(merchant)
    await _costs(handle, statements, sale)
    again = await _costs(handle, statements, sale)
    assert again <= [1, 2, 2] and all(cost <= 2 for cost in again)
    payment_id = sale[0][1].payload.payment_id
    deliveries = await service.pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE payment_id = $1", payment_id
    )
    emails = await service.pool.fetchval(
        "SELECT count(*) FROM shopper_emails WHERE payment_id = $1", payment_id
    )
    assert (deliveries, emails) == (2, 1)


async def test_an_outcome_read_before_its_payment_is_told_when_the_payment_arrives(
    service: Service, receiver: Receiver, counted: tuple[PaymentEventHandler, StatementLog]
) -> None:
    handle, _ = counted
    merchant = await _merchant_with_endpoint(service, receiver, handle)
    initiated, authorized, captured = _sale(merchant)
    payment_id = initiated[1].payload.payment_id
    await handle(*captured)  # before its payment.initiated: it waits
    await handle(*authorized)
    waiting = await service.pool.fetchval(
        "SELECT count(*) FROM shopper_emails_waiting WHERE payment_id = $1", payment_id
    )
    assert waiting == 1
    await handle(*initiated)  # nothing written by its statement; the transaction tells it
    waiting = await service.pool.fetchval(
        "SELECT count(*) FROM shopper_emails_waiting WHERE payment_id = $1", payment_id
    )
    emails = await service.pool.fetch(
        "SELECT kind FROM shopper_emails WHERE payment_id = $1", payment_id
    )
    kept = await service.pool.fetchval(
        "SELECT count(*) FROM shopper_payments WHERE payment_id = $1", payment_id
    )
    assert (waiting, [r["kind"] for r in emails], kept) == (0, ["receipt"], 1)


async def test_a_batch_of_payment_events_is_applied_in_order_and_a_copy_once(
    service: Service, receiver: Receiver, counted: tuple[PaymentEventHandler, StatementLog]
) -> None:
    handle, _ = counted
    merchant = await _merchant_with_endpoint(service, receiver, handle)
    first, second = _sale(merchant), _sale(merchant)
    # one partition's batch: the captures of two payments, the first one twice
    await handle.batch([second[0], first[0]])
    await handle.batch([first[2], second[2], first[2]])
    for sale in (first, second):
        payment_id = sale[0][1].payload.payment_id
        deliveries = await service.pool.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE payment_id = $1", payment_id
        )
        emails = await service.pool.fetchval(
            "SELECT count(*) FROM shopper_emails WHERE payment_id = $1", payment_id
        )
        assert (deliveries, emails) == (1, 1)
