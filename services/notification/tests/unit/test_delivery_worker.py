"""The delivery worker's decisions, with the database and HTTP replaced by fakes."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from standardwebhooks.webhooks import Webhook

from notification.adapters.http_sender import SendResult
from notification.adapters.repository import AttemptRecord, ClaimedDelivery
from notification.domain.retry import DeliveryStatus, RetryPolicy
from notification.domain.signing import generate_secret
from notification.domain.webhooks import Endpoint
from notification.service_layer.delivery_worker import DeliveryWorker
from sanalpos_common.metrics import WebhookMetrics

BODY = (
    '{"id":"evt_5f0c6a6b2d1e4b55b3e0c6a9f1d2e3f4","api_version":"v1",'
    '"created_at":"2025-01-01T00:00:00Z","type":"payment.captured","data":{"amount":1}}'
)


@dataclass
class FakeStore:
    due_in: float | None = None
    due: list[ClaimedDelivery] = field(default_factory=list)
    records: list[AttemptRecord] = field(default_factory=list)
    cancelled: list[uuid.UUID] = field(default_factory=list)
    pool: Any = None

    async def claim(self, limit: int, lease_s: float) -> list[ClaimedDelivery]:
        taken, self.due = self.due[:limit], self.due[limit:]
        return taken

    async def seconds_until_next_due(self) -> float | None:
        return self.due_in

    async def record(self, record: AttemptRecord) -> bool:
        self.records.append(record)
        return True

    async def cancel(self, delivery_id: uuid.UUID, attempt: int, reason: str) -> None:
        self.cancelled.append(delivery_id)

    async def pending(self) -> int:
        return len(self.due)


@dataclass
class FakeSender:
    results: list[SendResult]
    sent: list[tuple[str, dict[str, str], str]] = field(default_factory=list)

    async def send(self, url: str, headers: dict[str, str], body: str) -> SendResult:
        self.sent.append((url, headers, body))
        return self.results.pop(0)


def _worker(
    store: FakeStore,
    sender: FakeSender,
    max_attempts: int = 3,
    registry: CollectorRegistry | None = None,
) -> DeliveryWorker:
    return DeliveryWorker(
        store=store,  # type: ignore[arg-type]
        sender=sender,  # type: ignore[arg-type]
        policy=RetryPolicy(base_s=10.0, cap_s=100.0, max_attempts=max_attempts),
        metrics=WebhookMetrics(registry or CollectorRegistry()),
        concurrency=4,
        idle_poll_s=2.0,
        rng=random.Random(0),
    )


def _claimed(attempt: int = 1, enabled: bool = True) -> tuple[ClaimedDelivery, str]:
    secret = generate_secret()
    endpoint = Endpoint(
        endpoint_id=uuid.uuid4(),
        merchant_id="m",
        url="https://merchant.example/h",
        secret=secret,
        enabled=enabled,
    )
    delivery = ClaimedDelivery(
        id=uuid.uuid4(),
        payment_id=uuid.uuid4(),
        event_type="payment.captured",
        body=BODY,
        attempt=attempt,
        endpoint=endpoint,
    )
    return delivery, secret


async def test_idle_worker_sleeps_the_idle_poll() -> None:
    worker = _worker(FakeStore(due_in=None), FakeSender([]))
    assert await worker._next_wait(claimed=0) == 2.0


async def test_waits_until_the_next_retry_is_due() -> None:
    worker = _worker(FakeStore(due_in=0.3), FakeSender([]))
    assert await worker._next_wait(claimed=0) == pytest.approx(0.3)


async def test_never_spins_on_due_rows_it_cannot_claim() -> None:
    # Due now, but another worker holds them (SKIP LOCKED): a short pause, not a busy loop.
    worker = _worker(FakeStore(due_in=0.0), FakeSender([]))
    assert await worker._next_wait(claimed=0) == worker.min_wait_s > 0


async def test_claims_again_at_once_after_a_productive_round() -> None:
    worker = _worker(FakeStore(due_in=0.0), FakeSender([]))
    assert await worker._next_wait(claimed=3) == 0.0


async def test_successful_attempt_is_signed_and_recorded_delivered() -> None:
    delivery, secret = _claimed()
    store, sender = FakeStore(), FakeSender([SendResult(204, None, 12)])
    await _worker(store, sender)._deliver(delivery)

    [(url, headers, body)] = sender.sent
    assert url == delivery.endpoint.url and body == BODY
    assert headers["webhook-id"] == str(delivery.id)
    assert Webhook(secret).verify(body, headers)["data"] == {"amount": 1}
    [record] = store.records
    assert record.status is DeliveryStatus.DELIVERED
    assert (record.attempt, record.status_code, record.duration_ms) == (1, 204, 12)
    assert record.next_attempt_at is None


async def test_a_final_delivery_is_counted_by_result_with_its_age() -> None:
    delivery, _ = _claimed()
    delivery = replace(delivery, created_at=datetime.now(UTC) - timedelta(seconds=42))
    registry = CollectorRegistry()
    worker = _worker(FakeStore(), FakeSender([SendResult(204, None, 12)]), registry=registry)
    await worker._deliver(delivery)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("sanalpos_webhook_deliveries_total", result="delivered") == 1
    assert sample("sanalpos_webhook_delivery_age_seconds_count", result="delivered") == 1
    age = sample("sanalpos_webhook_delivery_age_seconds_sum", result="delivered")
    assert age is not None and 42 <= age < 60
    assert sample("sanalpos_webhook_attempts_total", result="204") == 1


async def test_failed_attempt_is_rescheduled_with_backoff() -> None:
    delivery, _ = _claimed(attempt=2)
    store = FakeStore()
    await _worker(store, FakeSender([SendResult(None, "ConnectError: refused", 3)]))._deliver(
        delivery
    )
    [record] = store.records
    assert record.status is DeliveryStatus.PENDING
    assert record.error == "ConnectError: refused" and record.status_code is None
    assert record.next_attempt_at is not None
    wait = (record.next_attempt_at - record.attempted_at).total_seconds()
    assert 10.0 - 0.5 <= wait <= 20.0 + 0.5  # ceiling for attempt 2 is 20 s, floor 10 s


async def test_last_attempt_failure_is_dead() -> None:
    delivery, _ = _claimed(attempt=3)
    store = FakeStore()
    await _worker(store, FakeSender([SendResult(500, None, 1)]), max_attempts=3)._deliver(delivery)
    [record] = store.records
    assert record.status is DeliveryStatus.FAILED and record.next_attempt_at is None


async def test_disabled_endpoint_is_cancelled_without_a_request() -> None:
    delivery, _ = _claimed(enabled=False)
    store, sender = FakeStore(), FakeSender([])
    await _worker(store, sender)._deliver(delivery)
    assert sender.sent == [] and store.records == []
    assert store.cancelled == [delivery.id]


async def test_unexpected_sender_error_still_records_the_attempt() -> None:
    class Broken(FakeSender):
        async def send(self, url: str, headers: dict[str, str], body: str) -> SendResult:
            raise RuntimeError("bug")

    delivery, _ = _claimed()
    store = FakeStore()
    await _worker(store, Broken([]))._deliver(delivery)
    [record] = store.records
    assert record.status is DeliveryStatus.PENDING and "RuntimeError" in (record.error or "")


async def test_webhook_post_is_a_span_under_the_queuing_handler_and_sends_its_traceparent() -> None:
    from dataclasses import replace

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from sanalpos_common import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        handler = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        delivery, _ = _claimed()
        store, sender = FakeStore(), FakeSender([SendResult(503, None, 5)])
        await _worker(store, sender)._deliver(replace(delivery, traceparent=handler))
    finally:
        tracing.shutdown()

    [span] = exporter.get_finished_spans()
    assert span.name == "webhook POST" and span.parent is not None
    assert span.parent.span_id == 0xB7AD6B7169203331
    assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.attributes[tracing.PAYMENT_ID] == str(delivery.payment_id)
    assert span.attributes["http.response.status_code"] == 503
    assert span.status.status_code is StatusCode.ERROR  # a 503 is a failed attempt
    [(_, headers, _)] = sender.sent
    assert headers["traceparent"].split("-")[1:3] == [
        "0af7651916cd43dd8448eb211c80319c",
        f"{span.context.span_id:016x}",
    ]


async def test_no_traceparent_is_sent_while_tracing_is_off() -> None:
    delivery, _ = _claimed()
    store, sender = FakeStore(), FakeSender([SendResult(204, None, 5)])
    await _worker(store, sender)._deliver(delivery)
    [(_, headers, _)] = sender.sent
    assert "traceparent" not in headers
