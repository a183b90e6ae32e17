"""Sends pending shopper emails: claim due rows, send them concurrently over SMTP, record
each attempt (the loop itself is service_layer/leased_worker.py, shared with webhooks).

Log lines name the email by id, kind and attempt: never its address or its body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from notification.service_layer.leased_worker import LeasedWorker
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


@dataclass(kw_only=True)
class EmailWorker(LeasedWorker):
    outbox: EmailOutbox
    sender: SmtpSender
    policy: RetryPolicy
    metrics: EmailMetrics
    lease_s: float = 120.0
    waiting_retention_h: float = 192.0
    purge_every_s: float = 600.0
    resolve_waiting: Callable[[], Awaitable[int]] | None = None
    """Queues the emails of outcomes left waiting for a payment that did arrive (a race
    between replicas); run every `resolve_every_s`."""
    resolve_every_s: float = 5.0
    sent: int = 0
    _last_purge: float = 0.0
    _last_resolve: float = 0.0

    label = "email worker"
    channel = EMAIL_CHANNEL

    @property
    def leased(self) -> EmailOutbox:
        return self.outbox

    def _task_name(self, item: ClaimedEmail) -> str:
        return f"email:{item.id}"

    async def _before_cycle(self) -> None:
        await self._purge_if_due()
        await self._resolve_if_due()

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

    async def _pending_now(self) -> int:
        pending = await self.outbox.pending()
        self.metrics.pending.set(pending)
        return pending


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
