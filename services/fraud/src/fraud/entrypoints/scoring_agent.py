"""The body of faust agent "score-payments": decode, batch, score, ack in stream order.

Source side: group_by(card fingerprint) repartitions payment.initiated.v1; undecodable
values are dead-lettered there, with their original bytes, key, headers and coordinates,
and skipped. Grouped side, iterated in order with manual acks (noack): events already
buffered are taken together (up to batch_max) -> one DB transaction for the batch (inbox +
decision + outbox rows; velocity read from the tables plus the batch's own earlier
payments) -> feature table (velocity buckets included) updated -> every event acked.

Offsets. faust commits, every `commit_interval_s`, the highest offset below which every
message has been acked, after flushing its producer (so repartitioned copies and changelog
writes are on the broker before the source offsets that produced them are committed). An
event is acked only after the transaction holding its inbox row committed (or after it was
dead-lettered). The agent body never raises for a message: it follows the shared retry
policy (sanalpos_common.messaging.retry): infrastructure errors are retried until they
clear; any other error splits the batch and retries each message on its own a bounded
number of times before dead-lettering it. Acks are always given in stream order, so the
only way out without an ack is cancellation at shutdown, and then nothing after the unacked
messages is acked either. That matters because faust 0.15 commits past a single unacked
offset at the head of a partition when a later one is acked (faust-streaming issue #606,
fix in PR #707 not released): in-order acks never produce that pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, cast

import faust
from faust.exceptions import Skip

from fraud.adapters.deadletter import FaustDeadLetters
from fraud.adapters.feature_table import BatchFeatures
from fraud.adapters.velocity import BatchVelocity
from fraud.entrypoints.stream_progress import StreamProgress
from fraud.entrypoints.stream_topology import METRICS_CONSUMER, StreamTopology
from fraud.service_layer.scoring import Incoming, Outcome, PaymentScoring, ScoreResult
from sanalpos_common import topics, tracing
from sanalpos_common.messaging.retry import GaveUp, RetryPolicy, run_with_retries
from sanalpos_common.metrics import FraudMetrics
from sanalpos_common.observability import Metrics, payment_id_var
from sanalpos_common.schemas.codec import UndecodableMessage, decode

log = logging.getLogger(__name__)
CHANGELOG_FLUSH_TIMEOUT_S = 10.0


@dataclass
class ScoringAgent:
    topology: StreamTopology
    scoring: PaymentScoring
    dead_letters: FaustDeadLetters
    metrics: Metrics
    progress: StreamProgress
    retry: RetryPolicy
    batch_max: int
    decisions: FraudMetrics | None = None

    async def score_payments(self, stream: faust.StreamT) -> None:
        async def card_key(raw: bytes | None) -> bytes:
            return await self._card_key(stream, raw)

        # noack(): StreamT does not declare it, faust.Stream has it.
        by_card_stream = cast(
            faust.Stream, stream.group_by(card_key, name="card", topic=self.topology.by_card)
        )

        async def forwarded(value: bytes) -> bytes:
            # Runs after group_by's processor: the by-card copy has been produced.
            if stream.current_event is not None:
                self.topology.guard.release(stream.current_event.message)
            return value

        stream.add_processor(forwarded)
        grouped = by_card_stream.noack()
        buffered = _buffer_probe(grouped)
        batch: list[_Pending] = []
        async for event in grouped.events():
            self.metrics.topic(METRICS_CONSUMER, event.message.topic).consumed.inc()
            try:
                envelope = decode(topics.PAYMENT_INITIATED, event.value)
            except UndecodableMessage as exc:
                await self._flush(batch)  # earlier messages first: acks stay in order
                await _complete(self._dead_letter(event.message, f"undecodable: {exc}", 1))
                self._ack(event)
                continue
            batch.append(_Pending(event, Incoming(envelope, event.message.partition)))
            if len(batch) >= self.batch_max or not buffered():
                await self._flush(batch)

    # --------------------------------------------------------- repartition (source side)
    async def _card_key(self, stream: faust.StreamT, raw: bytes | None) -> bytes:
        """group_by key: the card fingerprint. Poison messages are dead-lettered and skipped.

        faust turns any exception raised here into Skip (the source message is acked and
        not forwarded), so a message must be safely in the dead-letter topic before this
        raises.
        """
        try:
            envelope = decode(topics.PAYMENT_INITIATED, raw)
            return str(envelope.payload.card.fingerprint).encode()
        except UndecodableMessage as exc:
            error = f"undecodable: {exc}"
        except Exception as exc:  # decode should raise nothing else; never lose the message
            error = f"undecodable: {type(exc).__name__}: {exc}"
        event = stream.current_event
        if event is not None:
            await _complete(self._dead_letter(event.message, error, attempts=1))
            self.topology.guard.release(event.message)
        raise Skip()

    # ----------------------------------------------------------- scoring (grouped side)
    async def _flush(self, batch: list[_Pending]) -> None:
        """Score, commit and ack everything in `batch` (in order), then empty it."""
        if not batch:
            return
        self.progress.in_flight_since = time.monotonic()
        try:
            if len(batch) == 1 or not await self._commit(batch, max_attempts=1):
                # One message, or a batch that failed for a reason other than the
                # infrastructure: each message on its own, dead-lettered if it keeps failing.
                for item in batch:
                    if not await self._commit([item], max_attempts=self.retry.max_attempts):
                        await _complete(
                            self._dead_letter(
                                item.event.message, item.error or "unknown", self.retry.max_attempts
                            )
                        )
                        self._ack(item.event)
        finally:
            batch.clear()
            self.progress.in_flight_since = None

    async def _commit(self, batch: list[_Pending], *, max_attempts: int) -> bool:
        """True when the batch committed and was acked; False when the retry policy gave up."""
        started = time.perf_counter()
        single = batch[0].incoming.envelope if len(batch) == 1 else None
        token = payment_id_var.set(str(single.correlation_id) if single else None)
        spans = self._spans(batch) if tracing.active else {}
        try:
            with tracing.message_spans(spans):
                outcome = await run_with_retries(
                    lambda: self._score(batch),
                    policy=replace(self.retry, max_attempts=max_attempts),
                    on_retry=lambda error, transient: self._count_retry(len(batch), transient),
                    what="scoring",
                )
        finally:
            payment_id_var.reset(token)
        tracing.end_all(spans.values(), outcome.reason if isinstance(outcome, GaveUp) else None)
        if isinstance(outcome, GaveUp):
            log.warning("scoring failed for a batch of %d: %s", len(batch), outcome.reason[:300])
            for item in batch:
                item.error = outcome.reason
            return False
        ledger, results = outcome
        # After the commit only: a redelivered message (DUPLICATE) is never counted twice.
        # The reverse order could count twice. What remains is a window from the commit
        # above until the changelog writes below are on the broker: a crash inside it
        # (SIGKILL, power loss) loses this batch's counts, since on redelivery the inbox
        # says duplicate, so those cards are under-counted by their share of one batch.
        # Waiting for the flush bounds the window to one batch (and, measured, does not
        # cost throughput: batches simply grow while it waits).
        ledger.apply()
        await self._flush_changelog()
        for item, result in zip(batch, results, strict=True):
            self._ack(item.event)
            self._record(item, result)
        share = (time.perf_counter() - started) / len(batch)
        for item in batch:
            self.metrics.topic(METRICS_CONSUMER, item.event.message.topic).handler_seconds.observe(
                share
            )
        self.progress.batches += 1
        return True

    def _spans(self, batch: list[_Pending]) -> dict[Any, Any]:
        """A scoring span per payment, a child of intake's span that emitted it (the
        traceparent header survives the by-card repartition: faust forwards headers)."""
        spans = {}
        for item in batch:
            envelope = item.incoming.envelope
            spans[envelope.message_id] = tracing.message_span(
                topics.PAYMENT_INITIATED,  # as produced (it was read from its by-card copy)
                envelope.message_id,
                envelope.correlation_id,
                item.event.message.headers,
            )
        return spans

    async def _score(self, batch: list[_Pending]) -> tuple[BatchVelocity, list[ScoreResult]]:
        """One attempt: a fresh ledger each time, so a failed attempt counts nothing."""
        t = self.topology
        ledger = BatchVelocity(BatchFeatures(t.features), t.velocity)
        return ledger, await self.scoring.score([p.incoming for p in batch], ledger)

    def _count_retry(self, messages: int, transient: bool) -> None:
        self.progress.retries += 1
        counters = self.metrics.topic(METRICS_CONSUMER, self.topology.repartition_topic)
        (counters.retried_transient if transient else counters.retried_handler).inc(messages)

    async def _flush_changelog(self) -> None:
        try:  # bounded: a wedged producer must not wedge the agent (commits flush again)
            await asyncio.wait_for(
                self.topology.app.producer.flush(), timeout=CHANGELOG_FLUSH_TIMEOUT_S
            )
        except Exception as exc:
            log.warning("changelog flush failed: %s", type(exc).__name__)

    def _ack(self, event: Any) -> None:
        self.topology.guard.release(event.message)
        event.ack()

    def _record(self, item: _Pending, result: ScoreResult) -> None:
        p = self.progress
        p.processed += 1
        p.last_processed_monotonic = time.monotonic()
        p.last_event_time = item.incoming.payment.created_at
        counters = self.metrics.topic(METRICS_CONSUMER, item.event.message.topic)
        counters.processed.inc()
        if result.outcome is Outcome.DUPLICATE:
            p.duplicates += 1
            counters.duplicates.inc()
        assessment = result.assessment if result.outcome is Outcome.SCORED else None
        if assessment is not None and self.decisions is not None:
            self.decisions.decisions.labels(assessment.decision.value).inc()

    async def _dead_letter(self, message: Any, error: str, attempts: int) -> None:
        source = await self.dead_letters.publish(message, error, attempts)
        self.progress.dead_lettered += 1
        self.metrics.topic(METRICS_CONSUMER, source.topic).dead_lettered.inc()
        log.error(
            "dead-lettered %s[%d]@%d: %s",
            source.topic,
            source.partition,
            source.offset,
            error[:300],
        )


async def _complete(work: Awaitable[None], grace_s: float = 30.0) -> None:
    """Run `work` to the end even if the caller is cancelled meanwhile (then re-raise).

    Used for dead-letter publishes that precede an ack: a cancelled publish must not be
    followed by the ack that would make faust commit past the message.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception, TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=grace_s)
        raise


@dataclass
class _Pending:
    event: Any
    incoming: Incoming
    error: str | None = None


def _buffer_probe(stream: Any) -> Callable[[], bool]:
    """True while more events are already waiting in the stream's channel queue.

    Used to take what is buffered as one batch without ever waiting for more: under low
    load every message is its own batch, under load batches grow up to batch_max.
    """
    queue = getattr(stream.channel, "queue", None)
    if queue is None:
        return lambda: False
    return lambda: not queue.empty()
