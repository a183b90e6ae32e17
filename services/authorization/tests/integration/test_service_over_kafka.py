"""The whole authorization service in-process, driven through the real local Kafka.

Private schema and private consumer group (starting at the current end of its topics), a
group-less reader on the output topics; payments with fresh ids. A five-second pre-authorization
expiry and a fast scan, so the supervised expiry loop is seen releasing a hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, SecretStr

from authorization.bootstrap import bootstrap
from authorization.config import AuthorizationSettings
from authorization.service_layer.handlers import AuthorizationHandlers
from sanalpos_common import topics
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.runtime import serve
from sanalpos_common.schemas.codec import decode, encode, new_envelope
from sanalpos_common.schemas.events import (
    CapturePayment,
    FraudDecision,
    ReviewDecision,
    ReviewResolved,
    VoidPayment,
)
from sanalpos_common.settings import DEV_PAN_KEYRING
from sanalpos_common.testing import free_port, start_group_at_end, wait_for

from .conftest import BASE_DSN, MERCHANT, Lifecycle

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
OUTPUTS = (
    topics.PAYMENT_AUTHORIZED,
    topics.PAYMENT_DECLINED,
    topics.PAYMENT_CAPTURED,
    topics.PAYMENT_ACTION_REQUIRED,
    topics.PAYMENT_VOIDED,
    topics.PAYMENT_EXPIRED,
    topics.PAYMENT_OPERATION_FAILED,
    topics.dead_letter_topic("authorization"),
)
# The topics the service's handler table routes; listing them calls none of its dependencies.
CONSUMED_TOPICS = AuthorizationHandlers(None, None, None, None).table().topics  # type: ignore[arg-type]


@dataclass
class Kafka:
    producer: AIOKafkaProducer
    seen: dict[str, list[tuple[str, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    async def send(self, topic: str, payload: BaseModel) -> None:
        payment_id = payload.payment_id  # type: ignore[attr-defined]
        envelope = new_envelope(topic, payload, correlation_id=payment_id, producer="test")
        await self.producer.send_and_wait(topic, encode(envelope), key=str(payment_id).encode())

    async def topics_for(self, payment_id: uuid.UUID, count: int) -> list[str]:
        """The topics the payment's events arrived on, sorted: Kafka orders within one topic
        partition only, so events written in one transaction arrive in either order."""

        async def enough() -> list[str] | None:
            got = [t for t, _ in self.seen[str(payment_id)]]
            return sorted(got) if len(got) >= count else None

        return await wait_for(enough, timeout=20)

    def payload(self, payment_id: uuid.UUID, topic: str) -> dict[str, Any]:
        return next(p for t, p in self.seen[str(payment_id)] if t == topic)


async def _read_forever(consumer: AIOKafkaConsumer, kafka: Kafka) -> None:
    async for record in consumer:
        key = record.key.decode() if record.key else ""
        if record.topic.startswith("dlq."):
            kafka.seen[key].append((record.topic, {}))
            continue
        payload = decode(record.topic, record.value).payload.model_dump(mode="json")
        kafka.seen[key].append((record.topic, payload))


@pytest.fixture(scope="module")
async def kafka() -> AsyncIterator[Kafka]:
    run = uuid.uuid4().hex[:10]
    schema = f"authorization_svc_{run}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await ensure_topics(KAFKA, [*CONSUMED_TOPICS, *OUTPUTS])
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    group = f"authorization-test-{run}"
    await start_group_at_end(KAFKA, group, CONSUMED_TOPICS, producer)
    reader = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None)
    await reader.start()
    partitions = [TopicPartition(n, p) for n in OUTPUTS for p in await producer.partitions_for(n)]
    reader.assign(partitions)
    await reader.seek_to_end(*partitions)
    for tp in partitions:
        await reader.position(tp)  # resolve the end now, before anything is published
    kafka = Kafka(producer)
    reading = asyncio.create_task(_read_forever(reader, kafka))

    settings = AuthorizationSettings(
        database_url=SecretStr(f"{BASE_DSN}?search_path={schema}"),
        http_port=free_port(),
        kafka_bootstrap_servers=KAFKA,
        consumer_group=group,
        pan_keyring=SecretStr(DEV_PAN_KEYRING),
        preauth_expiry_s=5,
        preauth_expiry_scan_interval_s=0.2,
    )
    platform = await bootstrap(settings)
    server = asyncio.create_task(serve(platform.runtime), name="authorization-under-test")

    async def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient() as client:
                url = f"http://127.0.0.1:{settings.http_port}/readyz"
                return (await client.get(url)).status_code == 200
        return False

    try:
        await wait_for(ready, timeout=30, interval=0.2)
        yield kafka
    finally:
        server.cancel()
        reading.cancel()
        for task in (server, reading):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await reader.stop()
        await producer.stop()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@pytest.fixture(scope="module")
def payments() -> Lifecycle:
    """Only for building payment.scored payloads (no database use)."""
    return Lifecycle(pool=None)  # type: ignore[arg-type]


def merchant_initiated(payments: Lifecycle, amount: int, **kwargs: Any) -> Any:
    """No security code: the code's hourly keyring is the service's own state file."""
    scored = payments.scored("4111111111111111", amount, **kwargs)
    return scored.model_copy(
        update={"card": scored.card.model_copy(update={"cvc_ciphertext": None})}
    )


async def test_a_pre_authorization_is_captured_in_part_through_kafka(
    kafka: Kafka, payments: Lifecycle
) -> None:
    scored = merchant_initiated(payments, 9_000)
    await kafka.send(topics.PAYMENT_SCORED, scored)
    assert await kafka.topics_for(scored.payment_id, 1) == [topics.PAYMENT_AUTHORIZED]

    await kafka.send(
        topics.CAPTURE_PAYMENT,
        CapturePayment(
            payment_id=scored.payment_id,
            merchant_id=MERCHANT,
            amount=6_000,
            currency="TRY",
            requested_at=datetime.now(UTC),
        ),
    )
    assert await kafka.topics_for(scored.payment_id, 2) == sorted(
        [topics.PAYMENT_AUTHORIZED, topics.PAYMENT_CAPTURED]
    )
    captured = kafka.payload(scored.payment_id, topics.PAYMENT_CAPTURED)
    assert (captured["amount"], captured["authorized_amount"]) == (6_000, 9_000)


async def test_an_uncaptured_pre_authorization_expires_on_its_own(
    kafka: Kafka, payments: Lifecycle
) -> None:
    scored = merchant_initiated(payments, 4_000)
    await kafka.send(topics.PAYMENT_SCORED, scored)
    assert await kafka.topics_for(scored.payment_id, 2) == sorted(
        [topics.PAYMENT_AUTHORIZED, topics.PAYMENT_EXPIRED]
    )
    assert kafka.payload(scored.payment_id, topics.PAYMENT_EXPIRED)["amount"] == 4_000


async def test_a_review_is_held_then_approved_through_kafka(
    kafka: Kafka, payments: Lifecycle
) -> None:
    scored = merchant_initiated(payments, 2_500, capture=True, decision=FraudDecision.REVIEW)
    await kafka.send(topics.PAYMENT_SCORED, scored)
    assert await kafka.topics_for(scored.payment_id, 1) == [topics.PAYMENT_ACTION_REQUIRED]
    await kafka.send(
        topics.REVIEW_RESOLVED,
        ReviewResolved(
            payment_id=scored.payment_id,
            merchant_id=MERCHANT,
            decision=ReviewDecision.APPROVE,
            resolved_by="3ds",
        ),
    )
    assert await kafka.topics_for(scored.payment_id, 3) == sorted(
        [topics.PAYMENT_ACTION_REQUIRED, topics.PAYMENT_AUTHORIZED, topics.PAYMENT_CAPTURED]
    )


async def test_a_command_for_an_unknown_payment_fails_without_dead_lettering(
    kafka: Kafka,
) -> None:
    stranger = uuid.uuid4()
    await kafka.send(
        topics.VOID_PAYMENT,
        VoidPayment(payment_id=stranger, merchant_id=MERCHANT, requested_at=datetime.now(UTC)),
    )
    assert await kafka.topics_for(stranger, 1) == [topics.PAYMENT_OPERATION_FAILED]
    failed = kafka.payload(stranger, topics.PAYMENT_OPERATION_FAILED)
    assert (failed["operation"], failed["reason"]) == ("void", "no authorization for this payment")
