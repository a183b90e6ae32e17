"""Delivers pending webhooks: claim due rows, POST them concurrently, record each attempt.

No database transaction is open while a request is in flight: a claim is a short UPDATE that
moves the row's due time a lease ahead, and the result is written in a second short
transaction fenced on the attempt number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
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
from sanalpos_common import tracing
from sanalpos_common.db import keeps_session_state
from sanalpos_common.metrics import WebhookMetrics
from sanalpos_common.observability import payment_id_var, redact

log = logging.getLogger(__name__)


@dataclass
class DeliveryWorker:
    store: DeliveryStore
    sender: HttpSender
    policy: RetryPolicy
    metrics: WebhookMetrics
    concurrency: int = 64
    lease_s: float = 60.0
    idle_poll_s: float = 1.0
    min_wait_s: float = 0.02
    stall_after_s: float = 30.0
    drain_timeout_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    last_cycle_monotonic: float | None = None
    delivered: int = 0
    listener_pid: int | None = None
    """Backend pid of the LISTEN connection, for diagnostics."""
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: bool = False

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        listener = await self.store.pool.acquire()
        keeps_session_state(listener)
        await listener.add_listener(DELIVERY_CHANNEL, self._notified)
        listener.add_termination_listener(self._notified)
        self.listener_pid = listener.get_server_pid()
        try:
            while not self._stopping:
                if listener.is_closed():
                    # The database restarted: crash so the supervisor starts a fresh run with
                    # a new LISTEN connection, rather than silently falling back to polling.
                    raise ConnectionError("LISTEN connection lost")
                self.last_cycle_monotonic = time.monotonic()
                self.metrics.cycles.inc()
                try:
                    claimed = await self.dispatch_due()
                    wait = await self._next_wait(claimed)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("delivery worker database error: %s", type(exc).__name__)
                    wait = 1.0
                await self._sleep(wait)
            await self._drain()
        finally:
            self.listener_pid = None
            with contextlib.suppress(Exception):
                listener.remove_termination_listener(self._notified)
                await listener.remove_listener(DELIVERY_CHANNEL, self._notified)
            await self.store.pool.release(listener)

    async def dispatch_due(self) -> int:
        """Claim what fits in the free concurrency and start sending it. Returns how many."""
        free = self.concurrency - len(self._in_flight)
        claimed = await self.store.claim(free, self.lease_s)
        for delivery in claimed:
            task = asyncio.create_task(self._deliver(delivery), name=f"webhook:{delivery.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        self.metrics.in_flight.set(len(self._in_flight))
        return len(claimed)

    async def _next_wait(self, claimed: int) -> float:
        free = self.concurrency - len(self._in_flight)
        if claimed and free > 0:
            return 0.0  # claim again at once: more may be due than fitted in this round
        if free <= 0:
            return self.idle_poll_s  # woken as soon as a send finishes
        due_in = await self.store.seconds_until_next_due()
        if due_in is None:
            return self.idle_poll_s
        # Due yet nothing claimed means another worker holds those rows for a moment:
        # never spin on them.
        return max(self.min_wait_s, min(due_in, self.idle_poll_s))

    def _notified(self, *_: object) -> None:
        self._wakeup.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self.metrics.in_flight.set(len(self._in_flight))
        self._wakeup.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook task failed: %r", task.exception())

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0 and not self._wakeup.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        self._wakeup.clear()

    async def _drain(self) -> None:
        """On shutdown let in-flight sends finish (their leases cover any we abandon)."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=self.drain_timeout_s)
        for task in set(self._in_flight):
            task.cancel()

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

    async def readiness(self) -> tuple[bool, str]:
        last = self.last_cycle_monotonic
        if last is None:
            return False, "delivery worker has not started"
        age = time.monotonic() - last
        pending = await self.store.pending()
        self.metrics.pending.set(pending)
        return (
            age < self.stall_after_s,
            f"last cycle {age:.1f}s ago, {len(self._in_flight)} in flight, {pending} pending",
        )


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
