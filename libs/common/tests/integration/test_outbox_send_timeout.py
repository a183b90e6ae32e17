"""An aiokafka send can hang after a broker restart (its future never resolves). The relay
guards each batch with a timeout: the batch rolls back and is sent again, instead of the
relay (and every event behind it) hanging for good."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.messaging.producer import build_producer
from sanalpos_common.observability import Metrics
from sanalpos_common.testing import wait_for

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")


class HangsOnce:
    """A producer whose first send never completes, like one stuck after a broker restart."""

    def __init__(self, real: AIOKafkaProducer) -> None:
        self.real = real
        self.hung = 0

    async def send(self, topic: str, **kwargs: Any) -> asyncio.Future[Any]:
        if self.hung == 0:
            self.hung += 1
            return asyncio.get_running_loop().create_future()  # never resolved
        return await self.real.send(topic, **kwargs)


async def test_a_hung_send_times_out_and_the_batch_is_sent_again(
    pool: asyncpg.Pool,
) -> None:
    topic = f"test.relay-hang.{uuid.uuid4().hex[:8]}"
    await ensure_topics(BOOTSTRAP, [topic], partitions=1)
    producer = build_producer(BOOTSTRAP, client_id="relay-hang-test")
    await producer.start()
    hanging = HangsOnce(producer)
    relay = OutboxRelay(
        pool,
        hanging,  # type: ignore[arg-type]
        Metrics("hang"),
        idle_poll_s=0.1,
        send_timeout_s=1.0,
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
    assert hanging.hung == 1
    values = await _read_all(topic)
    # Every row reached Kafka; those Kafka got during the hung round arrive twice, which
    # consumers' inboxes absorb (at least once, never lost).
    assert set(values) == {str(i).encode() for i in ids}
    await producer.stop()


async def _read_all(topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [m.value for messages in batches.values() for m in messages]
    finally:
        await consumer.stop()
