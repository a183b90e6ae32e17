"""The start-up every service shares: pool, migrations, producer, relay, consumer, ops routes.

Services call `start_platform` from their bootstrap and add their own pieces to the
returned `Platform` before serving it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from prometheus_client import disable_created_metrics

from sanalpos_common import topics, tracing
from sanalpos_common.db import create_pool, migrate
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.consumer import ConsumerLoop, Handler
from sanalpos_common.messaging.idempotent import idempotent
from sanalpos_common.messaging.inbox import InboxPurge
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.messaging.producer import ReconnectingProducer, build_producer
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.observability import (
    Health,
    Metrics,
    configure_logging,
    instrument_http,
    ops_router,
)
from sanalpos_common.runtime import Runtime, with_startup_retry
from sanalpos_common.settings import ServiceSettings
from sanalpos_common.workers import run_workers, worker_count


@dataclass
class Platform:
    name: str
    settings: ServiceSettings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    metrics: Metrics
    health: Health
    relay: OutboxRelay
    runtime: Runtime

    def consume(
        self,
        topic_names: Sequence[str],
        handler: Handler,
        *,
        name: str | None = None,
        group_id: str | None = None,
    ) -> ConsumerLoop:
        loop = ConsumerLoop(
            name=name or self.name,
            group_id=group_id,
            topics=tuple(topic_names),
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            handler=handler,
            dead_letter_producer=self.producer,
            metrics=self.metrics,
            batch_wait_ms=self.settings.consumer_batch_wait_ms,
        )
        self.runtime.add_loop(f"consumer:{loop.name}", loop.run, loop.stop)
        self.health.add(f"consumer:{loop.name}", loop.readiness)
        return loop

    def consume_table(
        self,
        table: HandlerTable,
        *,
        consumer: str | None = None,
        group_id: str | None = None,
    ) -> ConsumerLoop:
        """Consume the table's topics idempotently: inbox row, state change and outbox rows
        in one transaction per batch, with this service as the events' producer."""
        inbox = consumer or self.name
        handler = idempotent(self.pool, inbox, table, producer=self.name)
        return self.consume(table.topics, handler, name=inbox, group_id=group_id)


async def start_platform(
    name: str,
    settings: ServiceSettings,
    migrations: Path,
    *,
    app: FastAPI | None = None,
    consumed_topics: Sequence[str] = (),
) -> Platform:
    configure_logging(name, settings.log_level)
    tracing.configure(name)
    disable_created_metrics()  # a `_created` series per counter doubles what is scraped
    metrics = Metrics(name)
    health = Health()
    pool = await _connect_database(settings, name, migrations)
    producer = await _connect_kafka(settings, name, consumed_topics)
    relay = OutboxRelay(pool=pool, producer=producer, metrics=metrics)
    metrics.watch_pool(pool)
    metrics.add_sampler(relay.sample)

    app = app or FastAPI(title=f"sanalpos {name}")
    app.include_router(ops_router(name, health, metrics))
    instrument_http(app, metrics)
    if tracing.enabled():
        app.add_middleware(tracing.TracingMiddleware)
    runtime = Runtime(name=name, app=app, host=settings.http_host, port=settings.http_port)
    runtime.on_close(_flush_traces)  # closers run in reverse: this one last
    runtime.add_loop("outbox-relay", relay.run, relay.stop)
    purge_stop = asyncio.Event()
    runtime.add_loop("outbox-purge", lambda: _purge_forever(relay, purge_stop), purge_stop.set)
    inbox_purge = InboxPurge(pool, settings.inbox_retention_hours)
    inbox_stop = asyncio.Event()
    runtime.add_loop("inbox-purge", lambda: inbox_purge.run_until(inbox_stop), inbox_stop.set)
    runtime.on_close(producer.stop)
    runtime.on_close(pool.close)

    async def database_ready() -> tuple[bool, str]:
        started = time.perf_counter()
        await pool.fetchval("SELECT 1")
        return True, f"select 1 in {1000 * (time.perf_counter() - started):.1f} ms"

    async def kafka_ready() -> tuple[bool, str]:
        await producer.client.fetch_all_metadata()
        return True, "metadata ok"

    async def outbox_ready() -> tuple[bool, str]:
        pending = await relay.pending()
        # Poisoned rows do not make the service unready (the rows behind them flow); they
        # are named here and alerted on through sanalpos_outbox_poisoned_total.
        poisoned = f", {relay.poisoned_rows} poisoned" if relay.poisoned_rows else ""
        return pending < 10_000, f"{pending} rows pending{poisoned}"

    health.add("database", database_ready)
    health.add("kafka", kafka_ready)
    health.add("outbox", outbox_ready)
    return Platform(name, settings, pool, producer, metrics, health, relay, runtime)


async def _connect_database(settings: ServiceSettings, name: str, migrations: Path) -> asyncpg.Pool:
    async def connect() -> asyncpg.Pool:
        pool = await create_pool(
            settings.database_url.get_secret_value(), max_size=settings.db_pool_size
        )
        try:
            await migrate(pool, name, migrations)
        except BaseException:
            await pool.close()
            raise
        return pool

    return await with_startup_retry("database", connect, timeout_s=settings.startup_timeout_s)


async def _connect_kafka(
    settings: ServiceSettings, name: str, consumed_topics: Sequence[str]
) -> AIOKafkaProducer:
    async def connect() -> AIOKafkaProducer:
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            [*topics.ALL_TOPICS, topics.dead_letter_topic(name), *consumed_topics],
            spec=settings.topic_spec,
        )
        producer = ReconnectingProducer(
            lambda: build_producer(settings.kafka_bootstrap_servers, client_id=name)
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        # A drop-in: every AIOKafkaProducer attribute is passed through to the current one.
        return cast(AIOKafkaProducer, producer)

    return await with_startup_retry("kafka", connect, timeout_s=settings.startup_timeout_s)


async def _flush_traces() -> None:
    await asyncio.to_thread(tracing.shutdown)


async def _purge_forever(relay: OutboxRelay, stop: asyncio.Event, every_s: float = 600.0) -> None:
    """Published outbox rows are kept for the retention period, then deleted."""
    while not stop.is_set():
        await relay.purge_published()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop unless `SANALPOS_EVENT_LOOP=asyncio`: its transports and scheduling cost a
    fraction of the standard loop's CPU on a service's hot path (every socket write to
    Postgres, Kafka and HTTP clients)."""
    if os.environ.get("SANALPOS_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    import uvloop

    # Loops made later in other threads (faust's consumer thread) are uvloop's too.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return uvloop.new_event_loop


def run_service(bootstrap: Callable[[], Awaitable[Platform]]) -> None:
    """Console-script body shared by every service: build, then serve until SIGINT/SIGTERM.

    With `<SERVICE>_WORKERS=N` (the service named by the bootstrap's package) it runs N
    worker processes on one port (`sanalpos_common.workers`)."""
    from sanalpos_common.runtime import serve

    count = worker_count(bootstrap.__module__.split(".")[0])

    async def _run() -> None:
        platform = await bootstrap()
        await serve(platform.runtime, reuse_port=count > 1)

    def run_one() -> None:
        # uvicorn re-raises the signal that stopped it after its own shutdown; with SIGTERM's
        # default disposition that would kill the process before consumers, relay and pool
        # close.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=loop_factory()) as runner,
        ):
            runner.run(_run())

    if count == 1:
        run_one()
    else:
        run_workers(count, run_one)
