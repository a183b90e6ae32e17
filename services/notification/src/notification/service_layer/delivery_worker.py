"""Delivers pending webhooks: claim due rows, POST them concurrently, record each attempt
(the loop itself is service_layer/leased_worker.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import SpanKind

from notification.adapters.http_sender import HttpSender, SendResult
from notification.adapters.repository import (
    DELIVERY_CHANNEL,
    AttemptRecord,
    ClaimedDelivery,
    DeliveryStore,
)
from notification.domain.retry import DeliveryStatus, RetryPolicy, decide
from notification.domain.signing import InvalidSecret, webhook_headers
from notification.service_layer.leased_worker import LeasedWorker
from sanalpos_common import tracing
from sanalpos_common.metrics import WebhookMetrics
from sanalpos_common.observability import payment_id_var, redact

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DeliveryWorker(LeasedWorker):
    store: DeliveryStore
    sender: HttpSender
    policy: RetryPolicy
    metrics: WebhookMetrics
    concurrency: int = 64
    delivered: int = 0

    label = "delivery worker"
    channel = DELIVERY_CHANNEL

    @property
    def leased(self) -> DeliveryStore:
        return self.store

    def _task_name(self, item: ClaimedDelivery) -> str:
        return f"webhook:{item.id}"

    async def _before_cycle(self) -> None:
        self.metrics.cycles.inc()

    def _in_flight_changed(self) -> None:
        self.metrics.in_flight.set(len(self._in_flight))

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        token = payment_id_var.set(str(delivery.payment_id))
        try:
            attempted_at = datetime.now(UTC)
            if not delivery.endpoint.enabled:
                await self.store.cancel(delivery.id, delivery.attempt, "endpoint disabled")
                self._count_final(delivery, DeliveryStatus.CANCELLED)
                return
            try:
                keys = delivery.endpoint.signing_keys(attempted_at)
            except InvalidSecret as exc:
                result = SendResult(None, f"InvalidSecret: {exc}", 0)
            else:
                result = await self._send(delivery, keys)
            await self._record(delivery, result, attempted_at)
        finally:
            payment_id_var.reset(token)

    async def _send(self, delivery: ClaimedDelivery, keys: Any) -> SendResult:
        timestamp = int(time.time())
        headers = webhook_headers(keys, str(delivery.id), timestamp, delivery.body)
        span = webhook_span(delivery)
        with tracing.activate(span):
            if (traceparent := tracing.current_traceparent()) is not None:
                headers["traceparent"] = traceparent
            try:
                result = await self.sender.send(delivery.endpoint.url, headers, delivery.body)
            except Exception as exc:  # a bug must not leave the row retrying forever
                log.exception("unexpected error sending webhook %s", delivery.id)
                result = SendResult(None, f"{type(exc).__name__}: {exc}", 0)
        if span is not None:
            if result.status_code is not None:
                span.set_attribute("http.response.status_code", result.status_code)
            ok = result.status_code is not None and 200 <= result.status_code < 300
            tracing.end_span(span, None if ok else (result.error or f"HTTP {result.status_code}"))
        return result

    async def _record(
        self, delivery: ClaimedDelivery, result: SendResult, attempted_at: datetime
    ) -> None:
        decision = decide(
            self.policy, delivery.attempt, result.status_code, datetime.now(UTC), self.rng
        )
        label = str(result.status_code) if result.status_code is not None else "error"
        self.metrics.attempts.labels(label).inc()
        self.metrics.attempt_seconds.observe(result.duration_ms / 1000)
        recorded = await self.store.record(
            AttemptRecord(
                delivery_id=delivery.id,
                attempt=delivery.attempt,
                status_code=result.status_code,
                error=redact(result.error)[:1000] if result.error else None,
                duration_ms=result.duration_ms,
                attempted_at=attempted_at,
                status=decision.status,
                next_attempt_at=decision.next_attempt_at,
            )
        )
        if not recorded:
            log.warning("delivery %s attempt %d outlived its lease", delivery.id, delivery.attempt)
            return
        if decision.status is DeliveryStatus.DELIVERED:
            self.delivered += 1
            self._count_final(delivery, decision.status)
            log.info(
                "webhook %s %s delivered on attempt %d",
                delivery.id,
                delivery.event_type,
                delivery.attempt,
            )
        elif decision.status is DeliveryStatus.FAILED:
            self._count_final(delivery, decision.status)
            log.error(
                "webhook %s %s dead after %d attempts (last: %s)",
                delivery.id,
                delivery.event_type,
                delivery.attempt,
                result.error or result.status_code,
            )
        else:
            log.info(
                "webhook %s attempt %d failed (%s); retry at %s",
                delivery.id,
                delivery.attempt,
                result.error or result.status_code,
                decision.next_attempt_at.isoformat() if decision.next_attempt_at else "-",
            )

    def _count_final(self, delivery: ClaimedDelivery, status: DeliveryStatus) -> None:
        self.metrics.deliveries.labels(status.value).inc()
        if delivery.created_at is not None:
            age = (datetime.now(UTC) - delivery.created_at).total_seconds()
            self.metrics.delivery_age.labels(status.value).observe(max(0.0, age))

    async def sample(self) -> None:
        """Scrape-time gauge of the deliveries still to go."""
        self.metrics.pending.set(await self.store.pending())

    async def _pending_now(self) -> int:
        pending = await self.store.pending()
        self.metrics.pending.set(pending)
        return pending


def webhook_span(delivery: ClaimedDelivery) -> Any:
    """The CLIENT span of one webhook POST, a child of the handler span that queued it."""
    if not tracing.active:
        return None
    return tracing.start_span(
        "webhook POST",
        parent=delivery.traceparent,
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": "POST",
            "sanalpos.webhook.event_type": delivery.event_type,
            "sanalpos.webhook.attempt": delivery.attempt,
            tracing.PAYMENT_ID: str(delivery.payment_id),
        },
    )
