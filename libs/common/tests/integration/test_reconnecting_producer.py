"""After a broker restart an aiokafka idempotent producer can stay broken for good (every
send fails with OutOfOrderSequenceNumber, or never completes). The producer services use
replaces itself after such a failure, so the outbox relay and dead-lettering recover."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber

from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.messaging.producer import ReconnectingProducer, build_producer
from sanalpos_common.observability import Metrics
from sanalpos_common.testing import wait_for

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")


class BrokenProducer(AIOKafkaProducer):
    """A real producer whose sends fail the way a broken idempotent producer's do."""

    def __init__(self, mode: str) -> None:
        super().__init__(bootstrap_servers=BOOTSTRAP)
        self.mode = mode

    async def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.mode == "out-of-order":
            future.set_exception(OutOfOrderSequenceNumber())
        return future  # "hang": never resolved


def broken_then_healthy(mode: str, made: list[AIOKafkaProducer]) -> Any:
    def factory() -> AIOKafkaProducer:
        producer = BrokenProducer(mode) if not made else build_producer(BOOTSTRAP, "reconnect-test")
        made.append(producer)
        return producer

    return factory


async def _topic() -> str:
    topic = f"test.reconnect.{uuid.uuid4().hex[:8]}"
    await ensure_topics(BOOTSTRAP, [topic], partitions=1)
    return topic


@pytest.mark.parametrize("mode", ["out-of-order", "hang"])
async def test_a_broken_producer_is_replaced_and_the_next_send_succeeds(mode: str) -> None:
    topic = await _topic()
    made: list[AIOKafkaProducer] = []
    producer = ReconnectingProducer(broken_then_healthy(mode, made), send_timeout_s=1.0)
    await producer.start()
    try:
        with pytest.raises((OutOfOrderSequenceNumber, TimeoutError)):
            await producer.send_and_wait(topic, b"first")
        assert producer.generation == 1 and len(made) == 2
        sent = await producer.send_and_wait(topic, b"second")
        assert sent.offset == 0
    finally:
        await producer.stop()


async def test_the_outbox_relay_recovers_from_a_producer_broken_for_good(
    pool: asyncpg.Pool,
) -> None:
    topic = await _topic()
    made: list[AIOKafkaProducer] = []
    producer = ReconnectingProducer(broken_then_healthy("out-of-order", made))
    await producer.start()
    relay = OutboxRelay(
        pool,
        producer,  # type: ignore[arg-type]
        Metrics("reconnect"),
        idle_poll_s=0.1,
        error_backoff_s=0.1,
    )
    ids = [uuid.uuid4() for _ in range(5)]
    await pool.executemany(
        "INSERT INTO outbox (topic, message_key, message_id, payload) VALUES ($1, $2, $3, $4)",
        [(topic, str(i), i, str(i).encode()) for i in ids],
    )
    run = asyncio.create_task(relay.run())
    try:
        await wait_for(
            lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"),
            timeout=20,
        )
    finally:
        relay.stop()
        await asyncio.wait_for(run, 10)
        await producer.stop()
    assert producer.generation == 1
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
    finally:
        await consumer.stop()
    assert {m.value for ms in batches.values() for m in ms} == {str(i).encode() for i in ids}
