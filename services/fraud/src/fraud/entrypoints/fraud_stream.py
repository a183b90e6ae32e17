"""The faust-streaming part of fraud: payment.initiated -> by-card repartition -> score.

One faust App at a time inside the service's event loop (stream_topology.py builds it,
scoring_agent.py is its agent, stream_watch.py judges its progress). payment.scored.v1 is
published by the platform's OutboxRelay, never by faust.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import faust
from aiokafka import AIOKafkaProducer

from fraud.adapters.deadletter import FaustDeadLetters
from fraud.adapters.lag import GroupLagProbe
from fraud.adapters.pinned_rocksdb import forget_foreign_tables, is_rocksdb, kafka_cluster_id
from fraud.config import FraudSettings
from fraud.entrypoints.scoring_agent import ScoringAgent
from fraud.entrypoints.stream_progress import StreamProgress
from fraud.entrypoints.stream_topology import (
    AGENT_NAME,
    DEAD_LETTER_CONSUMER,
    build_topology,
    stream_topics,
)
from fraud.entrypoints.stream_watch import StreamWatch
from fraud.service_layer.scoring import PaymentScoring
from sanalpos_common.messaging.retry import RetryPolicy
from sanalpos_common.metrics import FraudMetrics
from sanalpos_common.observability import Metrics

log = logging.getLogger(__name__)
APP_STOP_TIMEOUT_S = 8.0


class FraudStream:
    """`run` is a Runtime loop: it builds the App, starts it (mode Service, no faust Worker,
    so no signal handlers or logging set-up of its own), waits until asked to stop or until
    faust crashes, then stops it. A crash makes `run` raise, and the runtime's supervisor
    restarts it with a fresh App whose tables recover from their changelogs.
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
        self.metrics = metrics
        self.retry = RetryPolicy(max_attempts=max_attempts, backoff_s=retry_backoff_s)
        self.dead_letters = FaustDeadLetters(
            dead_letter_producer, DEAD_LETTER_CONSUMER, retry_backoff_s
        )
        self.progress = StreamProgress()
        probe = GroupLagProbe(
            settings.kafka_bootstrap_servers,
            group_id=settings.faust_app_id,
            topics=stream_topics(settings.faust_app_id),
            client_id=f"{settings.faust_app_id}-lag-probe",
        )
        self.watch = StreamWatch(settings, metrics, self.progress, probe)
        self.decisions = FraudMetrics(metrics.registry)
        self.app: faust.App | None = None
        metrics.add_sampler(lambda: self.watch.sample_lag(self.app))
        self._stop = asyncio.Event()

    def build_app(self) -> faust.App:
        topology = build_topology(self.settings, log_start=self.watch.probe.log_start_offsets)
        agent = ScoringAgent(
            topology=topology,
            scoring=self.scoring,
            dead_letters=self.dead_letters,
            metrics=self.metrics,
            progress=self.progress,
            retry=self.retry,
            batch_max=self.settings.batch_max,
            decisions=self.decisions,
        )
        topology.app.agent(topology.source, name=AGENT_NAME)(agent.score_payments)
        topology.app.on_startup_finished = self._on_startup_finished
        return topology.app

    async def _on_startup_finished(self) -> None:
        self.progress.ready_monotonic = time.monotonic()
        started = self.progress.started_monotonic or self.progress.ready_monotonic
        log.info(
            "faust started; tables recovered in %.2fs", self.progress.ready_monotonic - started
        )

    async def run(self) -> None:
        if self._stop.is_set():
            return
        if is_rocksdb(self.settings.faust_store):
            await self._check_datadir()
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
                await self.watch.heal_stalled_partitions(app)
        finally:
            await self._stop_app(app, starting)

    async def _check_datadir(self) -> None:
        cluster_id = await kafka_cluster_id(self.settings.kafka_bootstrap_servers)
        datadir = self.settings.faust_data_dir()
        if forget_foreign_tables(datadir, cluster_id, self.settings.faust_app_id):
            log.warning(
                "faust data dir %s held tables of another Kafka cluster or faust app id: "
                "emptied, recovering from the changelogs",
                datadir,
            )

    async def _stop_app(self, app: faust.App, starting: asyncio.Future[None]) -> None:
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
        stopping_at = time.monotonic()
        try:
            await asyncio.wait_for(app.stop(), timeout=APP_STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("faust app did not stop within %.0fs", APP_STOP_TIMEOUT_S)
        log.info("faust app stopped in %.2fs", time.monotonic() - stopping_at)
        self.progress.ready_monotonic = None

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        await self.watch.close()

    async def readiness(self) -> tuple[bool, str]:
        return await self.watch.readiness(self.app)
