"""The settlement service in-process on real Kafka and PostgreSQL: merchant profile, captures
and a refund arrive as Kafka messages; an operator closes the batch over HTTP; payment.settled
comes out on Kafka with the batch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, SecretStr

from sanalpos_common import topics
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.runtime import serve
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.events import MerchantUpdated, PaymentCaptured, PaymentRefunded
from sanalpos_common.service import Platform
from sanalpos_common.settings import DEV_ADMIN_TOKEN
from sanalpos_common.testing import free_port, start_group_at_end, wait_for
from settlement.bootstrap import bootstrap
from settlement.config import SettlementSettings
from settlement.service_layer.handlers import SettlementHandlers

from .conftest import KAFKA

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
DLQ = topics.dead_letter_topic("settlement")
# The topics the service's handler table routes; listing them calls none of its dependencies.
CONSUMED_TOPICS = SettlementHandlers(None).table().topics  # type: ignore[arg-type]


@dataclass
class Service:
    platform: Platform
    http: httpx.AsyncClient
    producer: AIOKafkaProducer

    @property
    def pool(self) -> asyncpg.Pool:
        return self.platform.pool

    async def publish(self, topic: str, payload: BaseModel, key: str, **envelope: Any) -> None:
        made = new_envelope(topic, payload, correlation_id=uuid.uuid4(), producer="tests")
        made = made.model_copy(update=envelope)
        await self.producer.send_and_wait(topic, value=encode(made), key=key.encode())


@pytest.fixture(scope="module")
async def service(schema_dsn: str) -> AsyncIterator[Service]:
    await ensure_topics(KAFKA, [*topics.ALL_TOPICS, DLQ])
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, enable_idempotence=True, acks="all")
    await producer.start()
    group = f"settlement-test-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(KAFKA, group, CONSUMED_TOPICS, producer)
    settings = SettlementSettings(
        database_url=SecretStr(schema_dsn),
        http_port=free_port(),
        consumer_group=group,
        batch_close_interval_s=3600,  # only the operator closes here
    )
    platform = await bootstrap(settings)
    server = asyncio.create_task(serve(platform.runtime))
    base_url = f"http://127.0.0.1:{settings.http_port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:

        async def ready() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await http.get("/readyz")).status_code == 200
            return False

        try:
            await wait_for(ready, timeout=60, interval=0.2)
            yield Service(platform, http, producer)
        finally:
            await producer.stop()
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server


async def _tail(topic: str) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the current end of every partition of `topic`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)  # resolve now, before anything is published
    return consumer


async def _read_keys(consumer: AIOKafkaConsumer, keys: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for _ in range(100):
        for messages in (await consumer.getmany(timeout_ms=200)).values():
            for message in messages:
                key = message.key.decode()
                if key in keys:
                    found[key] = message
        if set(found) == keys:
            break
    return found


async def test_captures_settle_when_an_operator_closes_the_batch(service: Service) -> None:
    merchant_id = f"mer_{uuid.uuid4().hex[:10]}"
    profile = MerchantUpdated(
        merchant_id=merchant_id,
        name="Kafka Shop",
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 59),
        fee_plan="volume",
        version=1,
    )
    await service.publish(topics.MERCHANT_UPDATED, profile, merchant_id)
    await wait_for(
        lambda: service.pool.fetchval(
            "SELECT 1 FROM merchants WHERE merchant_id = $1", merchant_id
        ),
        timeout=30,
    )
    payments = [uuid.uuid4(), uuid.uuid4()]
    for payment_id, amount in zip(payments, (10_000, 20_000), strict=True):
        captured = PaymentCaptured(
            payment_id=payment_id,
            merchant_id=merchant_id,
            amount=amount,
            currency="TRY",
            installments=1,
            auth_code="654321",
        )
        await service.publish(topics.PAYMENT_CAPTURED, captured, str(payment_id))
    refund = PaymentRefunded(
        refund_id=uuid.uuid4(),
        payment_id=payments[0],
        merchant_id=merchant_id,
        amount=4_000,
        currency="TRY",
        reason="partial return",
    )
    await service.publish(topics.PAYMENT_REFUNDED, refund, str(payments[0]))

    async def booked() -> bool:
        count = await service.pool.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE merchant_id = $1", merchant_id
        )
        return bool(count == 3)

    await wait_for(booked, timeout=30)
    listed = await service.http.get(
        "/admin/batches", params={"merchant_id": merchant_id}, headers=ADMIN
    )
    assert listed.status_code == 200
    [running] = listed.json()
    assert running["status"] == "open" and running["totals"]["gross_amount"] == 30_000

    settled_topic = await _tail(topics.PAYMENT_SETTLED)
    try:
        response = await service.http.post(
            "/admin/batches/close", json={"merchant_id": merchant_id}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        [batch] = response.json()["closed"]
        fees = 149 + 298  # the "volume" plan: 1.49%
        assert batch["totals"] == {
            "gross_amount": 30_000,
            "fee_amount": fees,
            "refund_amount": 4_000,
            "reversal_amount": 0,
            "net_amount": 30_000 - fees - 4_000,
        }
        assert (batch["payment_count"], batch["refund_count"], batch["status"]) == (2, 1, "closed")
        today = datetime.now(UTC).date()
        assert batch["value_date"] is not None and batch["batch_date"] >= str(today)

        messages = await _read_keys(settled_topic, {str(p) for p in payments})
    finally:
        await settled_topic.stop()
    assert set(messages) == {str(p) for p in payments}
    for message in messages.values():
        payload = json.loads(message.value)["payload"]
        assert payload["batch_id"] == batch["id"]
        assert payload["batch_date"] == batch["batch_date"]
        assert payload["gross_amount"] - payload["fee_amount"] == payload["net_amount"]

    again = await service.http.post(
        "/admin/batches/close", json={"merchant_id": merchant_id}, headers=ADMIN
    )
    assert again.json() == {"closed": []}
    report = await service.http.get(
        "/admin/batches", params={"merchant_id": merchant_id, "status": "closed"}, headers=ADMIN
    )
    assert [b["id"] for b in report.json()] == [batch["id"]]
    assert report.json()[0]["totals"] == batch["totals"]


async def test_admin_endpoints_need_the_token_and_valid_input(service: Service) -> None:
    anonymous = await service.http.post("/admin/batches/close")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    wrong = await service.http.get(
        "/admin/batches", headers={"Authorization": "Bearer not-the-token"}
    )
    assert wrong.status_code == 401
    invalid = await service.http.post(
        "/admin/batches/close", json={"merchant_id": "no spaces allowed"}, headers=ADMIN
    )
    assert invalid.status_code == 422
    assert [e["field"] for e in invalid.json()["errors"]] == ["merchant_id"]
    bad_status = await service.http.get("/admin/batches", params={"status": "x"}, headers=ADMIN)
    assert bad_status.status_code == 422
    assert [e["field"] for e in bad_status.json()["errors"]] == ["status"]


async def test_merchant_profile_with_an_unknown_fee_plan_is_dead_lettered(
    service: Service,
) -> None:
    merchant_id = f"mer_{uuid.uuid4().hex[:10]}"
    bad = MerchantUpdated(
        merchant_id=merchant_id,
        name="Bad Plan",
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time=time(23, 59),
        fee_plan="platinum",
        version=1,
    )
    dlq = await _tail(DLQ)
    try:
        await service.publish(topics.MERCHANT_UPDATED, bad, merchant_id)
        found = await _read_keys(dlq, {merchant_id})
    finally:
        await dlq.stop()
    assert merchant_id in found
    headers = {k: v.decode() for k, v in found[merchant_id].headers}
    assert any("fee_plan" in v and "platinum" in v for v in headers.values()), headers
    assert (
        await service.pool.fetchval(
            "SELECT count(*) FROM merchants WHERE merchant_id = $1", merchant_id
        )
        == 0
    )
