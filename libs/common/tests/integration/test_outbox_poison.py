"""A row Kafka can never take is poisoned and skipped; the rows behind it are published.
Real PostgreSQL (a scratch schema with the shared migrations) and the real broker: once a
row the producer refuses (over MAX_MESSAGE_BYTES), once one the broker refuses (over the
topic's max.message.bytes)."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.messaging.producer import MAX_MESSAGE_BYTES, build_producer
from sanalpos_common.observability import Metrics
from sanalpos_common.testing import wait_for

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
SECRET_MARK = b"payload-contents-never-logged"


async def add_row(pool: asyncpg.Pool, topic: str, payload: bytes) -> int:
    message_id = uuid.uuid4()
    row_id: int = await pool.fetchval(
        "INSERT INTO outbox (topic, message_key, message_id, payload) "
        "VALUES ($1, $2, $3, $4) RETURNING id",
        topic,
        "key-1",  # one key: one partition, so the rows behind share the poisoned row's order
        message_id,
        payload,
    )
    return row_id


async def nothing_pending(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval(
        "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL AND poisoned_at IS NULL"
    )


async def read_values(topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(values) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(r.value or b"" for r in records)
    finally:
        await consumer.stop()
    return values


async def run_relay_until_done(pool: asyncpg.Pool, metrics: Metrics) -> None:
    producer = build_producer(BOOTSTRAP, client_id="outbox-poison-test")
    await producer.start()
    relay = OutboxRelay(pool, producer, metrics, idle_poll_s=0.1)
    task = asyncio.create_task(relay.run())
    try:
        await wait_for(lambda: nothing_pending(pool), timeout=30)
        assert not task.done(), "the relay stopped"
        assert await relay.pending() == 0
        assert relay.poisoned_rows == 1
    finally:
        relay.stop()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()


async def test_a_row_over_the_producer_limit_is_poisoned_and_the_next_rows_flow(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"test.outbox-poison.{uuid.uuid4().hex[:8]}"
    await ensure_topics(BOOTSTRAP, [topic], partitions=1)
    before = await add_row(pool, topic, b"before")
    too_large = await add_row(pool, topic, SECRET_MARK * (2 * MAX_MESSAGE_BYTES // 29))
    after = [await add_row(pool, topic, f"after-{i}".encode()) for i in range(3)]
    metrics = Metrics("poison-test")

    with caplog.at_level(logging.ERROR, logger="sanalpos_common.messaging.outbox"):
        await run_relay_until_done(pool, metrics)

    poisoned = await pool.fetchrow("SELECT * FROM outbox WHERE id = $1", too_large)
    assert poisoned["poisoned_at"] is not None and poisoned["published_at"] is None
    assert "MessageSizeTooLargeError" in poisoned["poison_reason"]
    published = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE id = ANY($1::bigint[]) AND published_at IS NOT NULL",
        [before, *after],
    )
    assert published == 4
    assert await read_values(topic, 4) == [b"before", b"after-0", b"after-1", b"after-2"]
    assert (
        metrics.registry.get_sample_value("sanalpos_outbox_poisoned_total", {"topic": topic}) == 1
    )
    assert metrics.registry.get_sample_value("sanalpos_outbox_poisoned_rows") == 1
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and "poisoned" in r.message]
    assert len(alerts) == 1 and str(too_large) in alerts[0].message
    assert SECRET_MARK.decode() not in caplog.text


async def test_a_row_the_broker_refuses_is_poisoned_and_the_next_rows_flow(
    pool: asyncpg.Pool,
) -> None:
    topic = f"test.outbox-poison-broker.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:  # a topic with a smaller limit than the producer's: the broker refuses the row
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "10000"})]
        )
    finally:
        await admin.close()
    too_large = await add_row(pool, topic, b"x" * 50_000)
    after = await add_row(pool, topic, b"after")

    await run_relay_until_done(pool, Metrics("poison-broker-test"))

    reason = await pool.fetchval("SELECT poison_reason FROM outbox WHERE id = $1", too_large)
    assert reason is not None and "TooLarge" in reason
    assert await pool.fetchval("SELECT published_at FROM outbox WHERE id = $1", after)
    assert await read_values(topic, 1) == [b"after"]
