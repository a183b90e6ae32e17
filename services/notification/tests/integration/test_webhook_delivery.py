"""End to end through the real broker and database: event in, signed webhook out."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notification.domain.webhooks import delivery_id
from sanalpos_common import topics
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import (
    ActionRequired,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentSettled,
)

from .conftest import DLQ, KAFKA, Receiver, Service, wait_for

T = TypeVar("T")


def _merchant() -> str:
    return f"m-{uuid.uuid4().hex[:12]}"


def _captured(merchant_id: str, payment_id: uuid.UUID | None = None) -> Envelope[Any]:
    payment_id = payment_id or uuid.uuid4()
    payload = PaymentCaptured(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=150_075,
        currency="TRY",
        installments=3,
        auth_code="A1B2C3",
    )
    return new_envelope(
        topics.PAYMENT_CAPTURED, payload, correlation_id=payment_id, producer="authorization"
    )


async def _delivery(service: Service, webhook_id: uuid.UUID) -> dict[str, Any]:
    row = await service.pool.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", webhook_id)
    assert row is not None
    return dict(row)


async def _attempts(service: Service, webhook_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await service.pool.fetch(
        "SELECT * FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt", webhook_id
    )
    return [dict(r) for r in rows]


async def _final(service: Service, webhook_id: uuid.UUID) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        row = await service.pool.fetchrow(
            "SELECT * FROM webhook_deliveries WHERE id = $1 AND status <> 'pending'", webhook_id
        )
        return dict(row) if row else None

    return await wait_for(done, timeout=15)


async def test_service_is_ready_with_delivery_worker_check(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
        before = _metric(
            (await client.get("/metrics")).text, "sanalpos_webhook_worker_cycles_total"
        )
        await _sleep(1.0)
        after = _metric((await client.get("/metrics")).text, "sanalpos_webhook_worker_cycles_total")
    assert alive.status_code == 200
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert {"database", "kafka", "consumer:notification", "delivery-worker"} <= set(checks)
    assert checks["delivery-worker"]["ok"] is True
    assert "in flight" in checks["delivery-worker"]["detail"]
    # Idle, the worker sleeps (idle poll 5 s in tests) instead of spinning on the database.
    assert after - before <= 3, (before, after)


async def test_captured_payment_is_delivered_signed(service: Service, receiver: Receiver) -> None:
    merchant = _merchant()
    path = f"/hooks/{merchant}"
    endpoint_id, secret = await service.register_endpoint(merchant, receiver.url(path))
    envelope = _captured(merchant)
    await service.publish(topics.PAYMENT_CAPTURED, envelope)

    [request] = await wait_for(lambda: _async(receiver.requests(path)))
    document = Webhook(secret).verify(request.body, request.headers)
    assert document["type"] == "payment.captured"
    assert document["api_version"] == "v1" and document["id"].startswith("evt_")
    assert document["data"] == {
        "payment_id": str(envelope.payload.payment_id),
        "merchant_id": merchant,
        "amount": 150_075,
        "currency": "TRY",
        "installments": 3,
        "auth_code": "A1B2C3",
        "authorized_amount": None,
    }
    assert document["created_at"].endswith("Z")
    assert "ciphertext" not in request.body and "card" not in request.body
    expected_id = delivery_id(envelope.message_id, endpoint_id)
    assert request.headers["webhook-id"] == str(expected_id)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    assert request.headers["content-type"] == "application/json"

    row = await _final(service, expected_id)
    assert row["status"] == "delivered"
    assert row["attempts"] == 1
    assert row["payment_id"] == envelope.payload.payment_id
    [attempt] = await _attempts(service, expected_id)
    assert attempt["attempt"] == 1 and attempt["status_code"] == 200 and attempt["error"] is None
    assert attempt["duration_ms"] >= 0


async def test_new_deliveries_wake_the_idle_worker(service: Service, receiver: Receiver) -> None:
    # The worker's idle poll is 5 s in tests, so only pg NOTIFY (sent when the handler's
    # transaction commits) can make these prompt. Each payment is published while the worker
    # has gone back to sleep after the previous delivery.
    merchant = _merchant()
    path = f"/prompt/{merchant}"
    await service.register_endpoint(merchant, receiver.url(path))
    latencies = []
    for n in range(1, 4):
        await _sleep(0.3)
        published = time.monotonic()
        await service.publish(topics.PAYMENT_CAPTURED, _captured(merchant))
        await wait_for(lambda n=n: _async(len(receiver.requests(path)) >= n))
        latencies.append(receiver.requests(path)[-1].at - published)
    print("publish -> webhook received (ms):", [round(1000 * s) for s in latencies])
    assert max(latencies) < 1.0, latencies


async def test_worker_recovers_when_its_listen_connection_dies(
    service: Service, receiver: Receiver
) -> None:
    worker = service.worker
    old_pid = worker.listener_pid
    assert old_pid is not None
    assert await service.pool.fetchval("SELECT pg_terminate_backend($1)", old_pid)

    async def relistening() -> int | None:
        pid = worker.listener_pid
        return pid if pid not in (None, old_pid) else None

    await wait_for(relistening, timeout=10)

    merchant = _merchant()
    path = f"/relisten/{merchant}"
    await service.register_endpoint(merchant, receiver.url(path))
    await _sleep(0.3)  # let the worker go back to its (5 s) idle sleep
    published = time.monotonic()
    await service.publish(topics.PAYMENT_CAPTURED, _captured(merchant))
    [request] = await wait_for(lambda: _async(receiver.requests(path)))
    assert request.at - published < 1.0  # woken by NOTIFY on the new connection


async def test_500_twice_then_200_delivers_on_third_attempt(
    service: Service, receiver: Receiver
) -> None:
    merchant = _merchant()
    path = f"/flaky/{merchant}"
    receiver.script(path, [500, 500, 200])
    endpoint_id, secret = await service.register_endpoint(merchant, receiver.url(path))
    envelope = _captured(merchant)
    await service.publish(topics.PAYMENT_CAPTURED, envelope)
    webhook_id = delivery_id(envelope.message_id, endpoint_id)

    row = await _final(service, webhook_id)
    assert row["status"] == "delivered"
    assert row["attempts"] == 3
    attempts = await _attempts(service, webhook_id)
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 500), (3, 200)]

    requests = receiver.requests(path)
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {str(webhook_id)}
    assert len({r.body for r in requests}) == 1  # the same bytes every time
    for request in requests:  # each attempt is signed afresh and verifies
        assert Webhook(secret).verify(request.body, request.headers)["data"]["payment_id"] == str(
            envelope.payload.payment_id
        )
    # Backoff: retry n waits at least half of min(cap, base * 2**(n-1)) = 25 ms, 50 ms.
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.045, gaps


async def test_gives_up_after_max_attempts(service: Service, receiver: Receiver) -> None:
    merchant = _merchant()
    path = f"/down/{merchant}"
    receiver.script(path, [503] * 20)
    endpoint_id, _ = await service.register_endpoint(merchant, receiver.url(path))
    envelope = _captured(merchant)
    await service.publish(topics.PAYMENT_CAPTURED, envelope)
    webhook_id = delivery_id(envelope.message_id, endpoint_id)

    row = await _final(service, webhook_id)
    assert row["status"] == "failed"
    assert row["attempts"] == service.settings.retry_max_attempts == 4
    assert row["last_status_code"] == 503
    attempts = await _attempts(service, webhook_id)
    assert [a["status_code"] for a in attempts] == [503] * 4
    await _sleep(0.5)  # a dead delivery is not retried again
    assert len(receiver.requests(path)) == 4


async def test_timeout_counts_as_failure_and_is_retried(
    service: Service, receiver: Receiver
) -> None:
    merchant = _merchant()
    path = f"/slow/{merchant}"
    receiver.script(path, [200, 200], delays=[1.6, 0.0])  # client timeout is 1 s in tests
    endpoint_id, _ = await service.register_endpoint(merchant, receiver.url(path))
    envelope = _captured(merchant)
    await service.publish(topics.PAYMENT_CAPTURED, envelope)
    webhook_id = delivery_id(envelope.message_id, endpoint_id)

    row = await _final(service, webhook_id)
    assert row["status"] == "delivered"
    first, second = await _attempts(service, webhook_id)
    assert first["status_code"] is None and "Timeout" in first["error"]
    assert 900 <= first["duration_ms"] < 1600
    assert second["status_code"] == 200


async def test_same_envelope_twice_makes_one_delivery(service: Service, receiver: Receiver) -> None:
    merchant = _merchant()
    path = f"/dup/{merchant}"
    endpoint_id, secret = await service.register_endpoint(merchant, receiver.url(path))
    payment_id = uuid.uuid4()
    envelope = _captured(merchant, payment_id)
    await service.publish(topics.PAYMENT_CAPTURED, envelope)
    await service.publish(topics.PAYMENT_CAPTURED, envelope)  # redelivery: same message_id
    # Same topic and key, so the same partition: once this later event is delivered, both
    # copies of the first one have certainly been consumed.
    sentinel = _captured(merchant, payment_id)
    await service.publish(topics.PAYMENT_CAPTURED, sentinel)
    sentinel_id = delivery_id(sentinel.message_id, endpoint_id)
    await _final(service, sentinel_id)
    await _sleep(0.3)

    rows = await service.pool.fetch(
        "SELECT id, message_id, status FROM webhook_deliveries WHERE merchant_id = $1", merchant
    )
    by_message = {r["message_id"]: r for r in rows}
    assert len(rows) == 2
    assert set(by_message) == {envelope.message_id, sentinel.message_id}
    requests = receiver.requests(path)
    ids = [r.headers["webhook-id"] for r in requests]
    assert sorted(ids) == sorted(
        [str(delivery_id(envelope.message_id, endpoint_id)), str(sentinel_id)]
    )
    for request in requests:
        Webhook(secret).verify(request.body, request.headers)
    inbox = await service.pool.fetchval(
        "SELECT count(*) FROM inbox WHERE message_id = $1", envelope.message_id
    )
    assert inbox == 1


async def test_every_enabled_endpoint_of_the_merchant_and_no_other(
    service: Service, receiver: Receiver
) -> None:
    merchant, other = _merchant(), _merchant()
    a, b, off, foreign = (f"/multi/{merchant}/{n}" for n in ("a", "b", "off", "foreign"))
    id_a, secret_a = await service.register_endpoint(merchant, receiver.url(a))
    id_b, secret_b = await service.register_endpoint(merchant, receiver.url(b))
    id_off, secret_off = await service.register_endpoint(merchant, receiver.url(off))
    await service.register_endpoint(  # then disabled by a later registration
        merchant, receiver.url(off), secret_off, endpoint_id=id_off, enabled=False
    )
    await service.register_endpoint(other, receiver.url(foreign))

    payment_id = uuid.uuid4()
    authorized = PaymentAuthorized(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=990,
        currency="USD",
        auth_code="XYZ123",
        response_code="00",
        installments=1,
        capture=False,
    )
    envelope = new_envelope(
        topics.PAYMENT_AUTHORIZED, authorized, correlation_id=payment_id, producer="authorization"
    )
    await service.publish(topics.PAYMENT_AUTHORIZED, envelope)
    for endpoint_id in (id_a, id_b):
        assert (await _final(service, delivery_id(envelope.message_id, endpoint_id)))[
            "status"
        ] == "delivered"

    [to_a], [to_b] = receiver.requests(a), receiver.requests(b)
    assert Webhook(secret_a).verify(to_a.body, to_a.headers)["type"] == "payment.authorized"
    assert Webhook(secret_b).verify(to_b.body, to_b.headers)["data"] == {
        "payment_id": str(payment_id),
        "merchant_id": merchant,
        "amount": 990,
        "currency": "USD",
        "installments": 1,
        "auth_code": "XYZ123",
        "authentication": None,  # not authenticated with 3-D Secure
    }
    assert to_a.body == to_b.body  # one public event, signed per endpoint
    assert to_a.headers["webhook-id"] != to_b.headers["webhook-id"]
    with pytest.raises(WebhookVerificationError):  # each endpoint has its own secret
        Webhook(secret_b).verify(to_a.body, to_a.headers)
    assert receiver.requests(off) == [] and receiver.requests(foreign) == []


async def test_rotated_secret_signs_with_old_and_new(service: Service, receiver: Receiver) -> None:
    merchant = _merchant()
    path = f"/rotate/{merchant}"
    endpoint_id, old = await service.register_endpoint(merchant, receiver.url(path))
    _, new = await service.register_endpoint(merchant, receiver.url(path), endpoint_id=endpoint_id)
    assert old != new
    payment_id = uuid.uuid4()
    declined = PaymentDeclined(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=5000,
        currency="EUR",
        response_code="51",
        reason="insufficient funds",
        declined_by="issuer",
    )
    await service.publish(
        topics.PAYMENT_DECLINED,
        new_envelope(topics.PAYMENT_DECLINED, declined, correlation_id=payment_id, producer="t"),
    )
    [request] = await wait_for(lambda: _async(receiver.requests(path)))
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(request.body, request.headers)["type"] == "payment.failed"
    data = Webhook(old).verify(request.body, request.headers)["data"]
    assert data["decline_reason"] == "insufficient funds"
    assert (data["decline_code"], data["response_code"]) == ("insufficient_funds", "51")


async def test_static_endpoint_from_settings(service: Service, receiver: Receiver) -> None:
    payment_id = uuid.uuid4()
    settled = PaymentSettled(
        payment_id=payment_id,
        merchant_id=service.static_merchant,
        gross_amount=10_000,
        fee_amount=179,
        net_amount=9_821,
        currency="TRY",
        ledger_transaction_id=uuid.uuid4(),
    )
    await service.publish(
        topics.PAYMENT_SETTLED,
        new_envelope(topics.PAYMENT_SETTLED, settled, correlation_id=payment_id, producer="s"),
    )
    [request] = await wait_for(lambda: _async(receiver.requests(service.static_path)))
    document = Webhook(service.static_secret).verify(request.body, request.headers)
    assert document["type"] == "payment.settled"
    assert document["data"]["net_amount"] == 9_821


async def test_delivered_bodies_carry_no_fraud_score_decider_or_card_data(
    service: Service, receiver: Receiver
) -> None:
    merchant = _merchant()
    path = f"/private/{merchant}"
    _, secret = await service.register_endpoint(merchant, receiver.url(path))
    payment_id = uuid.uuid4()
    held = PaymentActionRequired(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=5000,
        currency="TRY",
        action=ActionRequired.REVIEW,
        score=77,
    )
    declined = PaymentDeclined(
        payment_id=payment_id,
        merchant_id=merchant,
        amount=5000,
        currency="TRY",
        response_code="59",
        reason="declined in fraud review",
        declined_by="fraud",
    )
    for topic, payload in (
        (topics.PAYMENT_ACTION_REQUIRED, held),
        (topics.PAYMENT_DECLINED, declined),
    ):
        envelope = new_envelope(topic, payload, correlation_id=payment_id, producer="t")
        await service.publish(topic, envelope)
    requests = await wait_for(lambda: _async(r if len(r := receiver.requests(path)) == 2 else None))
    documents = {}
    for request in requests:
        document = Webhook(secret).verify(request.body, request.headers)
        documents[document["type"]] = document["data"]
        for leak in ("score", "declined_by", '"fraud"', "fraud review", "ciphertext", "card"):
            assert leak not in request.body, (leak, request.body)
    assert documents["payment.requires_action"]["next_action"] == "await_review"
    assert documents["payment.failed"]["decline_code"] == "suspected_fraud"


async def test_undecodable_message_is_dead_lettered(service: Service) -> None:
    key = f"poison-{uuid.uuid4()}".encode()
    value = b'{"this is": "not an envelope"'
    async with _dlq_reader(service) as read_dlq:
        await service.publish_raw(topics.PAYMENT_CAPTURED, value, key)
        message = await read_dlq(key)
    headers = {k: v.decode() for k, v in message.headers}
    assert message.value == value
    assert "dlq.error" in headers and headers["dlq.error"].startswith("undecodable")
    assert headers["dlq.original.topic"] == topics.PAYMENT_CAPTURED
    assert headers["dlq.consumer"] == "notification"


async def test_invalid_endpoint_registration_is_dead_lettered(service: Service) -> None:
    merchant = _merchant()
    endpoint_id = uuid.uuid4()
    async with _dlq_reader(service) as read_dlq:
        await service.register_endpoint(
            merchant,
            "https://merchant.example/h",
            "whsec_tooshort",
            endpoint_id=endpoint_id,
            wait=False,
        )
        message = await read_dlq(str(endpoint_id).encode())
    headers = {k: v.decode() for k, v in message.headers}
    assert "InvalidSecret" in headers["dlq.error"]
    assert (
        await service.pool.fetchval(
            "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1", merchant
        )
        == 0
    )


# --------------------------------------------------------------------------- helpers


async def _async(value: T) -> T:
    return value


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not exported")


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def _dlq_reader(service: Service) -> AsyncIterator[Callable[[bytes], Awaitable[Any]]]:
    """Positioned at the current end of the DLQ; finds the dead letter with a given key."""
    partitions = [
        TopicPartition(DLQ, p) for p in sorted(await service.producer.partitions_for(DLQ))
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the positions before the poison message is produced
            await consumer.position(tp)

        async def read(key: bytes) -> Any:
            deadline = time.monotonic() + 15.0
            while time.monotonic() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for message in messages:
                        if message.key == key:
                            return message
            raise AssertionError(f"no dead letter with key {key!r} within 15s")

        yield read
    finally:
        await consumer.stop()
