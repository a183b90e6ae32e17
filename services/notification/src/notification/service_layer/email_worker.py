"""Sends pending shopper emails: claim due rows, send them concurrently over SMTP, record
each attempt. The same shape as the webhook delivery worker: no transaction is open during an
SMTP session, a claim is a lease, and the result is recorded fenced on the attempt number.

Log lines name the email by id, kind and attempt: never its address or its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from opentelemetry.trace import Span, SpanKind
from prometheus_client import CollectorRegistry, Counter, Gauge

from notification.adapters.shopper_emails import (
    EMAIL_CHANNEL,
    ClaimedEmail,
    EmailAttempt,
    EmailOutbox,
)
from notification.adapters.smtp_sender import SmtpResult, SmtpSender
from notification.domain.retry import RetryPolicy, next_attempt_at
from sanalpos_common import tracing
from sanalpos_common.observability import payment_id_var

log = logging.getLogger(__name__)


class EmailMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "sanalpos_shopper_email_attempts",
            "Shopper email SMTP attempts by result (sent, retry, failed)",
            ["result"],
            registry=registry,
        )
        self.pending = Gauge(
            "sanalpos_shopper_emails_pending",
            "Shopper emails not yet sent or given up",
            registry=registry,
        )


@dataclass
class EmailWorker:
    outbox: EmailOutbox
    sender: SmtpSender
    policy: RetryPolicy
    metrics: EmailMetrics
    concurrency: int = 8
    lease_s: float = 120.0
    idle_poll_s: float = 1.0
    min_wait_s: float = 0.02
    stall_after_s: float = 30.0
    drain_timeout_s: float = 5.0
    waiting_retention_h: float = 192.0
    purge_every_s: float = 600.0
    resolve_waiting: Callable[[], Awaitable[int]] | None = None
    """Queues the emails of outcomes left waiting for a payment that did arrive (a race
    between replicas); run every `resolve_every_s`."""
    resolve_every_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    last_cycle_monotonic: float | None = None
    sent: int = 0
    _last_purge: float = 0.0
    _last_resolve: float = 0.0
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: bool = False

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        listener = await self.outbox.pool.acquire()
        await listener.add_listener(EMAIL_CHANNEL, self._notified)
        listener.add_termination_listener(self._notified)
        try:
            while not self._stopping:
                if listener.is_closed():
                    raise ConnectionError("LISTEN connection lost")  # restarted afresh
                self.last_cycle_monotonic = time.monotonic()
                try:
                    await self._purge_if_due()
                    await self._resolve_if_due()
                    claimed = await self.dispatch_due()
                    wait = await self._next_wait(claimed)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("email worker database error: %s", type(exc).__name__)
                    wait = 1.0
                await self._sleep(wait)
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=self.drain_timeout_s)
            for task in set(self._in_flight):
                task.cancel()
        finally:
            with contextlib.suppress(Exception):
                listener.remove_termination_listener(self._notified)
                await listener.remove_listener(EMAIL_CHANNEL, self._notified)
            await self.outbox.pool.release(listener)

    async def dispatch_due(self) -> int:
        claimed = await self.outbox.claim(self.concurrency - len(self._in_flight), self.lease_s)
        for email in claimed:
            task = asyncio.create_task(self._deliver(email), name=f"email:{email.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    async def _next_wait(self, claimed: int) -> float:
        free = self.concurrency - len(self._in_flight)
        if claimed and free > 0:
            return 0.0
        if free <= 0:
            return self.idle_poll_s
        due_in = await self.outbox.seconds_until_next_due()
        if due_in is None:
            return self.idle_poll_s
        return max(self.min_wait_s, min(due_in, self.idle_poll_s))

    async def _purge_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < self.purge_every_s:
            return
        self._last_purge = now
        dropped = await self.outbox.purge_waiting(self.waiting_retention_h)
        if dropped:
            log.warning("%d shopper notices dropped: their payment never arrived", dropped)

    async def _resolve_if_due(self) -> None:
        now = time.monotonic()
        if self.resolve_waiting is None or now - self._last_resolve < self.resolve_every_s:
            return
        self._last_resolve = now
        try:
            resolved = await self.resolve_waiting()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            raise  # the loop's own handling: wait a moment, go on
        except Exception as exc:  # a bug here must not stop the sending
            log.error("resolving waiting shopper notices failed: %s", type(exc).__name__)
            return
        if resolved:
            log.info("%d shopper notices that waited for a known payment resolved", resolved)

    def _notified(self, *_: object) -> None:
        self._wakeup.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wakeup.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("email task failed: %r", task.exception())

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0 and not self._wakeup.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        self._wakeup.clear()

    async def _deliver(self, email: ClaimedEmail) -> None:
        token = payment_id_var.set(str(email.payment_id))
        try:
            attempted_at = datetime.now(UTC)
            span = email_span(email)
            with tracing.activate(span):
                try:
                    result = await self.sender.send(email)
                except Exception as exc:  # a bug must not leave the row retrying forever
                    log.error("unexpected %s sending email %s", type(exc).__name__, email.id)
                    result = SmtpResult(False, None, type(exc).__name__, 0)
            if span is not None:
                if result.code is not None:
                    span.set_attribute("sanalpos.smtp.reply_code", result.code)
                tracing.end_span(span, None if result.ok else result.error)
            await self._record(email, result, attempted_at)
        finally:
            payment_id_var.reset(token)

    async def _record(
        self, email: ClaimedEmail, result: SmtpResult, attempted_at: datetime
    ) -> None:
        retry_at = None
        if result.ok:
            status = "sent"
        elif result.permanent:
            status = "failed"
        else:
            retry_at = next_attempt_at(self.policy, email.attempt, datetime.now(UTC), self.rng)
            status = "pending" if retry_at is not None else "failed"
        recorded = await self.outbox.record(
            EmailAttempt(
                email_id=email.id,
                attempt=email.attempt,
                smtp_code=result.code,
                error=result.error,
                duration_ms=result.duration_ms,
                attempted_at=attempted_at,
                status=status,
                next_attempt_at=retry_at,
            )
        )
        if not recorded:
            log.warning("email %s attempt %d outlived its lease", email.id, email.attempt)
            return
        self.metrics.attempts.labels("retry" if status == "pending" else status).inc()
        if status == "sent":
            self.sent += 1
            log.info("%s email %s sent on attempt %d", email.kind, email.id, email.attempt)
        elif status == "failed":
            log.error(
                "%s email %s given up after %d attempts (last: %s)",
                email.kind,
                email.id,
                email.attempt,
                result.error,
            )
        else:
            assert retry_at is not None
            log.info(
                "%s email %s attempt %d failed (%s); retry at %s",
                email.kind,
                email.id,
                email.attempt,
                result.error,
                retry_at.isoformat(),
            )

    async def sample(self) -> None:
        self.metrics.pending.set(await self.outbox.pending())

    async def readiness(self) -> tuple[bool, str]:
        last = self.last_cycle_monotonic
        if last is None:
            return False, "email worker has not started"
        age = time.monotonic() - last
        pending = await self.outbox.pending()
        self.metrics.pending.set(pending)
        return (
            age < self.stall_after_s,
            f"last cycle {age:.1f}s ago, {len(self._in_flight)} in flight, {pending} pending",
        )


def email_span(email: ClaimedEmail) -> Span | None:
    """The CLIENT span of one SMTP attempt, a child of the handler span that queued it."""
    if not tracing.active:
        return None
    return tracing.start_span(
        "smtp send",
        parent=email.traceparent,
        kind=SpanKind.CLIENT,
        attributes={
            "sanalpos.email.kind": email.kind,
            "sanalpos.email.attempt": email.attempt,
            tracing.PAYMENT_ID: str(email.payment_id),
        },
    )
