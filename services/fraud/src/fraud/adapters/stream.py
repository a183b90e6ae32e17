"""The faust-streaming part of fraud: payment.initiated -> by-card repartition -> score.

Topology (one faust App, built when `FraudStream.run` starts, never at import time):

    payment.initiated.v1 (key = payment id)
        | agent "score-payments"; group_by(card fingerprint) with an explicit topic:
        |   undecodable values are dead-lettered here, with their original bytes, key,
        |   headers and coordinates, and skipped
        v
    <app id>-payment.initiated.v1-by-card-repartition (key = fingerprint)
        | same agent, iterating the grouped stream in order, manual acks (noack):
        |   events already buffered are taken together (up to batch_max) ->
        |   one DB transaction for the batch (inbox + decision + outbox rows; velocity
        |   read from the tables plus the batch's own earlier payments) ->
        |   velocity windows updated -> every event of the batch acked
        v
    tables <app id>-velocity-card-10m / -1h (hopping windows, changelog topics
    co-partitioned with the repartition topic)

payment.scored.v1 is published by the platform's OutboxRelay, never by faust.

Offsets. faust commits, every `commit_interval_s`, the highest offset below which every
message has been acked, after flushing its producer (so repartitioned copies and
changelog writes are on the broker before the source offsets that produced them are
committed). The grouped stream is iterated with `noack()`, and an event is acked only
after the transaction holding its inbox row committed (or after it was dead-lettered).
The agent body never raises for a message: infrastructure errors are retried until they
clear; any other error splits the batch and retries each message on its own a bounded
number of times before dead-lettering it. Acks are always given in stream order, so the
only way out without an ack is cancellation at shutdown, and then nothing after the
unacked messages is acked either. That matters because faust 0.15 commits past a single
unacked offset at the head of a partition when a later one is acked (faust-streaming
issue #606, fix in PR #707 not released): in-order acks never produce that pattern.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from faust.exceptions import Skip
from faust.types import TP as FaustTP

from fraud.adapters.ack_guard import AckGuard
from fraud.adapters.deadletter import DeadLetterSource
from fraud.adapters.faust_recovery import SeekFirstTableManager
from fraud.adapters.feature_table import BatchFeatures, FeatureTable
from fraud.adapters.lag import GroupLagProbe, LagSnapshot
from fraud.adapters.velocity import BatchVelocity, PartitionedTable, VelocityWindow
from fraud.config import FraudSettings
from fraud.service_layer.scoring import Incoming, Outcome, PaymentScoring, ScoreResult
from sanalpos_common import topics
from sanalpos_common.messaging.consumer import TRANSIENT_ERRORS
from sanalpos_common.messaging.deadletter import send_to_dead_letter
from sanalpos_common.observability import Metrics, payment_id_var
from sanalpos_common.schemas.codec import UndecodableMessage, decode

log = logging.getLogger(__name__)

DEAD_LETTER_CONSUMER = "fraud"  # -> dlq.fraud.v1
METRICS_CONSUMER = "fraud"
AGENT_NAME = "score-payments"
CHANGELOG_FLUSH_TIMEOUT_S = 10.0


def repartition_topic_name(app_id: str) -> str:
    return f"{app_id}-{topics.PAYMENT_INITIATED}-by-card-repartition"


def faust_brokers(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap_servers.split(",") if host.strip()]


@dataclass
class StreamProgress:
    started_monotonic: float | None = None
    ready_monotonic: float | None = None
    last_processed_monotonic: float | None = None
    last_event_time: datetime | None = None
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retries: int = 0
    batches: int = 0
    in_flight_since: float | None = None


class FraudStream:
    """Owns one faust App at a time inside the service's event loop.

    `run` is a Runtime loop: it builds the App, starts it (mode Service, no faust Worker,
    so no signal handlers or logging set-up of its own), waits until asked to stop or
    until faust crashes, then stops it. A crash makes `run` raise, and the runtime's
    supervisor restarts it with a fresh App whose tables recover from their changelogs.
    """

    def __init__(
        self,
        settings: FraudSettings,
        scoring: PaymentScoring,
        dead_letter_producer: AIOKafkaProducer,
        metrics: Metrics,
        *,
        max_attempts: int = 3,
        retry_backoff_s: float = 0.2,
    ) -> None:
        self.settings = settings
        self.scoring = scoring
        self.dead_letter_producer = dead_letter_producer
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.progress = StreamProgress()
        self.app: faust.App | None = None
        self._stop = asyncio.Event()
        self._short: VelocityWindow | None = None
        self._long: VelocityWindow | None = None
        self._features: FeatureTable | None = None
        self._lag_probe = GroupLagProbe(
            settings.kafka_bootstrap_servers,
            group_id=settings.faust_app_id,
            topics=(topics.PAYMENT_INITIATED, repartition_topic_name(settings.faust_app_id)),
            client_id=f"{settings.faust_app_id}-lag-probe",
        )
        self._lag: LagSnapshot | None = None
        self._guard = AckGuard(())
        self._committed: dict[TopicPartition, int | None] = {}
        self._committed_changed: dict[TopicPartition, float] = {}
        self._heal_seen: dict[TopicPartition, tuple[int, float]] = {}

    # ------------------------------------------------------------------ the faust app
    def build_app(self) -> faust.App:
        s = self.settings
        s.faust_datadir.mkdir(parents=True, exist_ok=True)
        app = faust.App(
            s.faust_app_id,
            broker=faust_brokers(s.kafka_bootstrap_servers),
            store=s.faust_store,
            autodiscover=False,
            web_enabled=False,
            datadir=str(s.faust_datadir),
            topic_partitions=s.internal_topic_partitions,
            topic_replication_factor=s.internal_topic_replication,
            broker_commit_interval=s.commit_interval_s,
            broker_session_timeout=s.session_timeout_s,
            broker_heartbeat_interval=s.heartbeat_interval_s,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_linger=s.producer_linger_s,
            processing_guarantee="at_least_once",
            Table=PartitionedTable,
            # faust's recovery resumes stream partitions before seeking them, which can
            # silently drop a stretch of a partition after a restart (faust_recovery.py).
            TableManager=SeekFirstTableManager,
        )
        # faust acks events it skips during a rebalance; only our own acks may count.
        self._guard = AckGuard(
            (topics.PAYMENT_INITIATED, repartition_topic_name(s.faust_app_id)),
            log_start=self._lag_probe.log_start_offsets,
        )
        self._guard.install(app.consumer)
        source = app.topic(
            topics.PAYMENT_INITIATED,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        by_card = app.topic(
            repartition_topic_name(s.faust_app_id),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=s.internal_topic_partitions,
            replicas=s.internal_topic_replication,
            internal=True,
        )
        self._short = VelocityWindow(
            app.Table(
                "velocity-card-10m",
                default=int,
                partitions=s.internal_topic_partitions,
                help="payments per card fingerprint, trailing short window",
            ).hopping(s.short_window_s, s.short_window_step_s, expires=2 * s.short_window_s)
        )
        self._long = VelocityWindow(
            app.Table(
                "velocity-card-1h",
                default=int,
                partitions=s.internal_topic_partitions,
                help="payments per card fingerprint, trailing long window",
            ).hopping(s.long_window_s, s.long_window_step_s, expires=2 * s.long_window_s)
        )
        # Streaming model features (fraud.domain.features): one JSON value per key, the
        # windows are event-time buckets inside the values (not faust windows).
        self._features = FeatureTable(
            app.Table(
                "features",
                partitions=s.internal_topic_partitions,
                help="streaming fraud features per card / IP / email / device / merchant / MCC",
            ),
            s.internal_topic_partitions,
        )

        async def score_payments(stream: faust.StreamT) -> None:
            async def card_key(raw: bytes | None) -> bytes:
                return await self._card_key(stream, raw)

            # noack(): StreamT does not declare it, faust.Stream has it.
            by_card_stream = cast(
                faust.Stream, stream.group_by(card_key, name="card", topic=by_card)
            )

            async def forwarded(value: bytes) -> bytes:
                # Runs after group_by's processor: the by-card copy has been produced.
                if stream.current_event is not None:
                    self._guard.release(stream.current_event.message)
                return value

            stream.add_processor(forwarded)
            grouped = by_card_stream.noack()
            buffered = _buffer_probe(grouped)
            batch: list[_Pending] = []
            async for event in grouped.events():
                try:
                    envelope = decode(topics.PAYMENT_INITIATED, event.value)
                except UndecodableMessage as exc:
                    await self._flush(batch)  # earlier messages first: acks stay in order
                    await _complete(self._dead_letter(event.message, f"undecodable: {exc}", 1))
                    self._ack(event)
                    continue
                batch.append(_Pending(event, Incoming(envelope, event.message.partition)))
                if len(batch) >= s.batch_max or not buffered():
                    await self._flush(batch)

        app.agent(source, name=AGENT_NAME)(score_payments)

        async def on_startup_finished() -> None:
            self.progress.ready_monotonic = time.monotonic()
            started = self.progress.started_monotonic or self.progress.ready_monotonic
            log.info(
                "faust started; tables recovered in %.2fs",
                self.progress.ready_monotonic - started,
            )

        app.on_startup_finished = on_startup_finished
        return app

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
            self._guard.release(event.message)
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
                    if not await self._commit([item], max_attempts=self.max_attempts):
                        await _complete(
                            self._dead_letter(
                                item.event.message, item.error or "unknown", self.max_attempts
                            )
                        )
                        self._ack(item.event)
        finally:
            batch.clear()
            self.progress.in_flight_since = None

    async def _commit(self, batch: list[_Pending], *, max_attempts: int) -> bool:
        """True when the batch committed and was acked; False after a non-transient failure."""
        short, long_ = self._windows()
        started = time.perf_counter()
        single = batch[0].incoming.envelope if len(batch) == 1 else None
        token = payment_id_var.set(str(single.correlation_id) if single else None)
        attempt = 0
        try:
            while True:
                attempt += 1
                ledger = BatchVelocity(short, long_, self._batch_features())
                try:
                    results = await self.scoring.score([p.incoming for p in batch], ledger)
                except TRANSIENT_ERRORS as exc:
                    # The database or network is down: wait it out, never dead-letter for it.
                    delay = min(5.0, self.retry_backoff_s * 2 ** min(attempt, 5))
                    log.warning(
                        "transient failure (%s), retrying in %.1fs", type(exc).__name__, delay
                    )
                    self.progress.retries += 1
                    self.metrics.messages.labels(
                        METRICS_CONSUMER,
                        repartition_topic_name(self.settings.faust_app_id),
                        "transient_retry",
                    ).inc(len(batch))
                    await asyncio.sleep(delay)
                    attempt = 0
                    continue
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    if attempt < max_attempts:
                        log.warning("scoring failed (attempt %d): %s", attempt, error[:300])
                        self.progress.retries += 1
                        await asyncio.sleep(self.retry_backoff_s * attempt)
                        continue
                    log.warning("scoring failed for a batch of %d: %s", len(batch), error[:300])
                    for item in batch:
                        item.error = error
                    return False
                break
        finally:
            payment_id_var.reset(token)
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
        self.metrics.handler_seconds.labels(METRICS_CONSUMER).observe(time.perf_counter() - started)
        self.progress.batches += 1
        return True

    async def _flush_changelog(self) -> None:
        if self.app is None:
            return
        try:  # bounded: a wedged producer must not wedge the agent (commits flush again)
            await asyncio.wait_for(self.app.producer.flush(), timeout=CHANGELOG_FLUSH_TIMEOUT_S)
        except Exception as exc:
            log.warning("changelog flush failed: %s", type(exc).__name__)

    def _ack(self, event: Any) -> None:
        self._guard.release(event.message)
        event.ack()

    def _record(self, item: _Pending, result: ScoreResult) -> None:
        p = self.progress
        p.processed += 1
        p.last_processed_monotonic = time.monotonic()
        p.last_event_time = item.incoming.payment.created_at
        if result.outcome is Outcome.DUPLICATE:
            p.duplicates += 1
        self.metrics.messages.labels(
            METRICS_CONSUMER, item.event.message.topic, result.outcome.value
        ).inc()
        if result.outcome is Outcome.SCORED and result.assessment is not None:
            self.metrics.events.labels(f"fraud_{result.assessment.decision.value}").inc()

    def _batch_features(self) -> BatchFeatures | None:
        return BatchFeatures(self._features) if self._features is not None else None

    def _windows(self) -> tuple[VelocityWindow, VelocityWindow]:
        if self._short is None or self._long is None:
            raise RuntimeError("faust app not built")
        return self._short, self._long

    async def _dead_letter(self, message: Any, error: str, attempts: int) -> None:
        source = DeadLetterSource.from_faust(message)
        delay = self.retry_backoff_s
        while True:
            try:
                await send_to_dead_letter(
                    self.dead_letter_producer, source, DEAD_LETTER_CONSUMER, error, attempts
                )
                break
            except (KafkaError, OSError) as exc:
                log.warning("dead-letter publish failed (%s), retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
        self.progress.dead_lettered += 1
        self.metrics.messages.labels(METRICS_CONSUMER, source.topic, "dead_lettered").inc()
        log.error(
            "dead-lettered %s[%d]@%d: %s",
            source.topic,
            source.partition,
            source.offset,
            error[:300],
        )

    # ------------------------------------------------------------------- life cycle
    async def run(self) -> None:
        if self._stop.is_set():
            return
        app = self.build_app()
        self.app = app
        self.progress.started_monotonic = time.monotonic()
        self.progress.ready_monotonic = None
        starting = asyncio.ensure_future(app.start())
        try:
            while not self._stop.is_set():
                if starting.done() and starting.exception() is not None:
                    raise RuntimeError("faust app failed to start") from starting.exception()
                if app.crashed:
                    raise RuntimeError(f"faust app crashed: {app.crash_reason!r}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=1.0)
                await self._heal_stalled_partitions()
        finally:
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(BaseException):
                    await starting
            stopping_at = time.monotonic()
            try:
                await asyncio.wait_for(app.stop(), timeout=8.0)
            except TimeoutError:
                log.warning("faust app did not stop within 8s")
            log.info("faust app stopped in %.2fs", time.monotonic() - stopping_at)
            self.progress.ready_monotonic = None

    async def _heal_stalled_partitions(self) -> None:
        """Seek a partition back to its committed offset when it has lag and its committed
        offset has not moved for `heal_after_s` while nothing is in flight: faust dropped
        fetched records in memory (see ack_guard.py), and nothing else would fetch them again.
        Redelivered messages that were already handled are duplicates for the inbox."""
        app = self.app
        p = self.progress
        if app is None or p.ready_monotonic is None or app.rebalancing or p.in_flight_since:
            return
        try:
            snapshot = await self._lag_snapshot()
            assigned = {tuple(tp) for tp in app.consumer.assignment()}
        except Exception as exc:  # the probe reconnects next time; healing can wait
            log.debug("stall check skipped: %s", type(exc).__name__)
            return
        now = time.monotonic()
        for tp, lag in snapshot.lag.items():
            committed = snapshot.position.get(tp)  # log start when the group never committed
            if lag <= 0 or committed is None or tuple(tp) not in assigned:
                self._heal_seen.pop(tp, None)
                continue
            seen = self._heal_seen.get(tp)
            if seen is None or seen[0] != committed:
                self._heal_seen[tp] = (committed, now)
                continue
            if now - seen[1] < self.settings.heal_after_s:
                continue
            log.warning(
                "%s[%d]: lag %d and no progress for %.0fs; seeking back to committed offset %d",
                tp.topic,
                tp.partition,
                lag,
                now - seen[1],
                committed,
            )
            await app.consumer.seek(FaustTP(tp.topic, tp.partition), committed)
            self._heal_seen[tp] = (committed, now)

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        await self._lag_probe.close()

    # -------------------------------------------------------------------- readiness
    async def readiness(self) -> tuple[bool, str]:
        app = self.app
        p = self.progress
        if app is None or p.started_monotonic is None:
            return False, "faust app not started"
        if app.crashed:
            return False, f"faust app crashed: {app.crash_reason!r}"
        if p.ready_monotonic is None:
            age = time.monotonic() - p.started_monotonic
            return False, f"faust starting / recovering tables for {age:.1f}s"
        snapshot = await self._lag_snapshot()
        now = time.monotonic()
        for topic, lag in snapshot.by_topic().items():
            self.metrics.consumer_lag.labels(METRICS_CONSUMER, topic).set(lag)
        # Judge only the partitions this member owns: with several replicas, another
        # member's progress must not hide this one being wedged.
        assigned = {tuple(tp) for tp in app.consumer.assignment()}
        mine = [tp for tp in snapshot.lag if tuple(tp) in assigned] or list(snapshot.lag)
        stalled = []
        for tp in mine:
            committed = snapshot.committed.get(tp)
            if tp not in self._committed or self._committed[tp] != committed:
                self._committed[tp] = committed
                self._committed_changed[tp] = now
            idle = now - max(self._committed_changed[tp], p.ready_monotonic)
            if snapshot.lag[tp] > 0 and idle >= self.settings.stall_after_s:
                stalled.append(f"{tp.topic}[{tp.partition}] lag {snapshot.lag[tp]} for {idle:.0f}s")
        my_lag = sum(snapshot.lag[tp] for tp in mine)
        since_event = (
            f"{now - p.last_processed_monotonic:.1f}s ago"
            if p.last_processed_monotonic is not None
            else "never"
        )
        detail = (
            f"lag {my_lag} (group {snapshot.total()}), processed {p.processed} (last "
            f"{since_event}, event time "
            f"{p.last_event_time.isoformat() if p.last_event_time else '-'}), "
            f"batches {p.batches}, dead-lettered {p.dead_lettered}, assigned "
            f"{len(assigned)} partitions"
            f"{', rebalancing' if app.rebalancing else ''}"
        )
        if stalled:
            return False, f"stalled: no offset progress on {', '.join(stalled)}; {detail}"
        if my_lag == 0:
            return True, f"caught up; {detail}"
        return True, f"consuming; {detail}"

    async def _lag_snapshot(self) -> LagSnapshot:
        cached = self._lag
        if cached and time.monotonic() - cached.taken_monotonic < self.settings.lag_probe_cache_s:
            return cached
        self._lag = await self._lag_probe.snapshot()
        return self._lag


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
