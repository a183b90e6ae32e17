"""Consumer loop: handler per message, offsets committed only after the handler's DB commit.

Decode failures are dead-lettered at once. Handler failures are retried a bounded number of
times, then dead-lettered; infrastructure failures (database or network down) are retried
until they clear, since dead-lettering good messages during an outage would lose ordering
(the policy is messaging/retry.py, shared with fraud's faust stream).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from sanalpos_common import tracing
from sanalpos_common.messaging.deadletter import send_to_dead_letter
from sanalpos_common.messaging.retry import (
    TRANSIENT_ERRORS,
    GaveUp,
    NonRetryable,
    RetryPolicy,
    run_with_retries,
)
from sanalpos_common.messaging.security import kafka_client_kwargs
from sanalpos_common.observability import Metrics, payment_id_var
from sanalpos_common.schemas.codec import UndecodableMessage, decode
from sanalpos_common.schemas.envelope import Envelope

log = logging.getLogger(__name__)

Handler = Callable[[str, Envelope[Any]], Awaitable[None]]
__all__ = ["TRANSIENT_ERRORS", "ConsumerLoop", "ConsumerProgress", "Handler", "NonRetryable"]


@dataclass
class ConsumerProgress:
    last_poll_monotonic: float | None = None
    last_commit_monotonic: float | None = None
    assigned: int = 0
    lag: dict[str, int] = field(default_factory=dict)
    processed: int = 0
    dead_lettered: int = 0


@dataclass
class ConsumerLoop:
    name: str
    topics: Sequence[str]
    bootstrap_servers: str
    handler: Handler
    dead_letter_producer: AIOKafkaProducer
    metrics: Metrics
    group_id: str | None = None
    max_attempts: int = 3
    retry_backoff_s: float = 0.2
    max_records: int = 500
    stall_after_s: float = 30.0
    batch_wait_ms: int = 0
    """With N > 0 the broker holds a fetch up to N ms for more records (or 1 MiB of them):
    batches instead of one record per fetch and per transaction, for N ms of latency."""
    lag_every_s: float = 1.0
    """Consumer lag is computed and exported at most this often, not after every poll."""
    commit_interval_s: float = 1.0
    """Offsets of handled (database-committed) messages are committed to Kafka at most this
    often, not after every poll: each commit is a broker round trip and a record in
    __consumer_offsets, five of them per payment when every poll committed. A crash replays
    at most this much, and the inbox drops what was already handled. Revoked partitions,
    a dead-lettered message and the stop commit at once."""
    progress: ConsumerProgress = field(default_factory=ConsumerProgress)
    _stopping: bool = False
    _consumer: AIOKafkaConsumer | None = None
    _uncommitted: dict[TopicPartition, int] = field(default_factory=dict)
    _commit_now: bool = False
    _lag_recorded: float = float("-inf")

    def _fetch_kwargs(self) -> dict[str, int]:
        if self.batch_wait_ms <= 0:
            return {}
        return {"fetch_max_wait_ms": self.batch_wait_ms, "fetch_min_bytes": 1024 * 1024}

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id or self.name,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_records,
            metadata_max_age_ms=5000,
            **self._fetch_kwargs(),
            **kafka_client_kwargs(),
        )
        consumer.subscribe(list(self.topics), listener=_CommitOnRevoke(self))
        self._consumer = consumer
        await consumer.start()
        try:
            while not self._stopping:
                batches = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                self.progress.last_poll_monotonic = time.monotonic()
                self.progress.assigned = len(consumer.assignment())
                for tp, messages in batches.items():
                    self.metrics.topic(self.name, tp.topic).consumed.inc(len(messages))
                await self._process_batches(batches)
                await self._commit_if_due(consumer)
                if time.monotonic() - self._lag_recorded >= self.lag_every_s:
                    await self._record_lag(consumer)
                    self._lag_recorded = time.monotonic()
            await self.commit_handled(consumer)
        finally:
            self._consumer = None
            await consumer.stop()

    async def _commit_if_due(self, consumer: AIOKafkaConsumer) -> None:
        last = self.progress.last_commit_monotonic
        due = last is None or time.monotonic() - last >= self.commit_interval_s
        if self._uncommitted and (due or self._commit_now):
            await self.commit_handled(consumer)

    async def commit_handled(
        self, consumer: AIOKafkaConsumer, only: set[TopicPartition] | None = None
    ) -> None:
        """Commits the offsets of every handled message (of `only` those partitions, being
        revoked). A partition no longer assigned (revoked while its batch was handled) is
        dropped: its new owner replays that batch, and the inbox drops it."""
        if only is None:
            assigned = consumer.assignment()
            for tp in [tp for tp in self._uncommitted if tp not in assigned]:
                del self._uncommitted[tp]
        offsets = {
            tp: offset for tp, offset in self._uncommitted.items() if only is None or tp in only
        }
        if not offsets:
            return
        await consumer.commit(offsets)
        for tp, offset in offsets.items():
            if self._uncommitted.get(tp) == offset:
                del self._uncommitted[tp]
        self._commit_now = False
        self.progress.last_commit_monotonic = time.monotonic()

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        lags: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            lag = max(0, highwater - await consumer.position(tp))
            self.progress.lag[f"{tp.topic}[{tp.partition}]"] = lag
            lags[(tp.topic, tp.partition)] = lag
        self.metrics.set_lag(self.name, lags)

    async def _process_batches(self, batches: Mapping[TopicPartition, list[Any]]) -> None:
        """Each partition's batch in turn; once handled, its next offset may be committed."""
        for tp, messages in batches.items():
            await self._process_partition_batch(messages)
            self._uncommitted[tp] = messages[-1].offset + 1

    async def _process_partition_batch(self, messages: list[Any]) -> None:
        """One transaction for the whole batch when the handler supports it; otherwise, or
        when that fails, one message at a time with retries and dead-lettering."""
        batch = getattr(self.handler, "batch", None)
        if batch is None or len(messages) < 2:
            for message in messages:
                await self._process(message)
            return
        decoded: list[tuple[Any, Envelope[Any]]] = []
        for message in messages:
            try:
                decoded.append((message, decode(message.topic, message.value)))
            except UndecodableMessage as exc:
                await self._dead_letter(message, f"undecodable: {exc}", attempts=1)
        started = time.perf_counter()
        spans = self._spans(decoded) if tracing.active else {}
        try:
            with tracing.message_spans(spans):
                await batch([(m.topic, e) for m, e in decoded])
        except Exception as exc:
            tracing.end_all(spans.values(), exc)
            log.warning("batch of %d failed (%s); one at a time", len(decoded), type(exc).__name__)
            for message, envelope in decoded:
                await self._handle_with_retries(message, envelope)
            return
        tracing.end_all(spans.values())
        share = (time.perf_counter() - started) / max(1, len(decoded))
        for message, _ in decoded:
            counters = self.metrics.topic(self.name, message.topic)
            counters.handler_seconds.observe(share)
            counters.processed.inc()
        self.progress.processed += len(decoded)

    def _spans(self, decoded: Sequence[tuple[Any, Envelope[Any]]]) -> dict[Any, Any]:
        """One handler span per message, each a child of the span that emitted it."""
        spans = {}
        for message, envelope in decoded:
            span = tracing.message_span(
                message.topic,
                envelope.message_id,
                envelope.correlation_id,
                message.headers,
            )
            spans[envelope.message_id] = span
        return spans

    async def _process(self, message: Any) -> None:
        try:
            envelope = decode(message.topic, message.value)
        except UndecodableMessage as exc:
            await self._dead_letter(message, f"undecodable: {exc}", attempts=1)
            return
        await self._handle_with_retries(message, envelope)

    async def _handle_with_retries(self, message: Any, envelope: Envelope[Any]) -> None:
        token = payment_id_var.set(str(envelope.correlation_id))  # every log line names it
        try:
            if not tracing.active:
                await self._retry_until_handled(message, envelope)
                return
            spans = self._spans([(message, envelope)])
            span = spans[envelope.message_id]
            with tracing.activate(span), tracing.message_spans(spans):
                error = await self._retry_until_handled(message, envelope)
            tracing.end_span(span, error)
        finally:
            payment_id_var.reset(token)

    async def _retry_until_handled(self, message: Any, envelope: Envelope[Any]) -> str | None:
        """Handles the message; returns why it was dead-lettered, or None."""
        started = time.perf_counter()

        async def handle() -> None:
            nonlocal started
            started = time.perf_counter()
            await self.handler(message.topic, envelope)

        counters = self.metrics.topic(self.name, message.topic)

        def on_retry(error: BaseException, transient: bool) -> None:
            (counters.retried_transient if transient else counters.retried_handler).inc()

        outcome = await run_with_retries(handle, policy=self._retry_policy(), on_retry=on_retry)
        if isinstance(outcome, GaveUp):
            if not isinstance(outcome.error, NonRetryable):
                log.error(
                    "handler failed %d times; dead-lettering",
                    outcome.attempts,
                    exc_info=outcome.error,
                )
            await self._dead_letter(message, outcome.reason, outcome.attempts)
            return "dead-lettered"
        counters.handler_seconds.observe(time.perf_counter() - started)
        counters.processed.inc()
        self.progress.processed += 1
        return None

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, backoff_s=self.retry_backoff_s)

    async def _dead_letter(self, message: Any, error: str, attempts: int) -> None:
        await send_to_dead_letter(self.dead_letter_producer, message, self.name, error, attempts)
        self.metrics.topic(self.name, message.topic).dead_lettered.inc()
        self.progress.dead_lettered += 1
        self._commit_now = True  # a replay would dead-letter it a second time
        log.error(
            "dead-lettered %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            error[:300],
        )

    async def readiness(self) -> tuple[bool, str]:
        last = self.progress.last_poll_monotonic
        if last is None:
            return False, "consumer has not polled yet"
        age = time.monotonic() - last
        ok = age < self.stall_after_s
        lag = sum(self.progress.lag.values())
        return ok, f"last poll {age:.1f}s ago, {self.progress.assigned} partitions, lag {lag}"


class _CommitOnRevoke(ConsumerRebalanceListener):
    """Before partitions go to another member, their handled offsets are committed, so the
    new owner does not replay what this one already handled."""

    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        consumer = self._loop._consumer
        if consumer is None or not revoked:
            return
        try:
            await self._loop.commit_handled(consumer, only=set(revoked))
        except Exception as exc:  # the group moved on already: the new owner replays
            log.warning("commit on revoke failed: %s", type(exc).__name__)
        for tp in revoked:
            self._loop._uncommitted.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None
