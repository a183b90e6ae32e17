"""Two outbox relays on one outbox: one publishes, the other stands by and takes over when
the first stops; every row reaches Kafka once. Real PostgreSQL (a scratch schema with the
shared migrations) and the real broker."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer

from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.messaging.producer import build_producer
from sanalpos_common.observability import Metrics
from sanalpos_common.runtime import supervised
from sanalpos_common.settings import local_database_url
from sanalpos_common.testing import wait_for

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")


async def add_rows(pool: asyncpg.Pool, topic: str, ids: list[uuid.UUID]) -> None:
    await pool.executemany(
        "INSERT INTO outbox (topic, message_key, message_id, payload) VALUES ($1, $2, $3, $4)",
        [(topic, str(i), i, str(i).encode()) for i in ids],
    )


async def published(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL")


async def test_one_relay_leads_the_other_takes_over(pool: asyncpg.Pool) -> None:
    topic = f"test.relay-leader.{uuid.uuid4().hex[:8]}"
    await ensure_topics(BOOTSTRAP, [topic], partitions=1)
    producer = build_producer(BOOTSTRAP, client_id="relay-leader-test")
    await producer.start()
    first = OutboxRelay(pool, producer, Metrics("a"), idle_poll_s=0.1, standby_poll_s=0.1)
    second = OutboxRelay(pool, producer, Metrics("b"), idle_poll_s=0.1, standby_poll_s=0.1)
    runs = {"first": asyncio.create_task(first.run())}
    try:
        await wait_for(lambda: _holds_lock(pool))
        runs["second"] = asyncio.create_task(second.run())
        await wait_for(lambda: _true(second.standing_by))
        before = [uuid.uuid4() for _ in range(20)]
        await add_rows(pool, topic, before)
        await wait_for(lambda: published(pool))
        assert second.standing_by

        first.stop()
        await runs.pop("first")
        await wait_for(lambda: _true(not second.standing_by))
        after = [uuid.uuid4() for _ in range(5)]
        await add_rows(pool, topic, after)
        await wait_for(lambda: published(pool))
    finally:
        for relay in (first, second):
            relay.stop()
        await asyncio.gather(*runs.values(), return_exceptions=True)
        await producer.stop()
    values = await _read_all(topic, expected=25)
    assert sorted(values) == sorted(str(i) for i in before + after)


async def test_the_leader_needs_no_connection_but_its_own(pool: asyncpg.Pool) -> None:
    """Batches are read and marked on the connection that holds the leader lock: with a pool
    of one connection (the relay's own) rows are still published."""
    topic = f"test.relay-own-conn.{uuid.uuid4().hex[:8]}"
    await ensure_topics(BOOTSTRAP, [topic], partitions=1)
    schema = await pool.fetchval("SELECT current_schema()")
    url = os.environ.get("SETTLEMENT_DATABASE_URL", local_database_url("settlement"))
    single = await asyncpg.create_pool(
        url, min_size=1, max_size=1, server_settings={"search_path": schema}
    )
    assert single is not None
    producer = build_producer(BOOTSTRAP, client_id="relay-own-conn-test")
    await producer.start()
    relay = OutboxRelay(single, producer, Metrics("own"), idle_poll_s=0.1)
    run = asyncio.create_task(relay.run())
    ids = [uuid.uuid4() for _ in range(10)]
    try:
        await wait_for(lambda: _holds_lock(pool))
        await add_rows(pool, topic, ids)
        await wait_for(lambda: published(pool), timeout=10)
        last = await pool.fetchval(
            "SELECT query FROM pg_stat_activity WHERE pid = $1", await _leader_pid(pool)
        )
        assert last.startswith(("SELECT id, topic", "UPDATE outbox"))
    finally:
        relay.stop()
        run.cancel()  # a relay waiting for a second pool connection would never stop
        await asyncio.gather(run, return_exceptions=True)
        await producer.stop()
        await single.close()
    assert sorted(await _read_all(topic, expected=10)) == sorted(str(i) for i in ids)


async def test_a_relay_that_loses_its_connection_restarts_and_leads_again(
    pool: asyncpg.Pool,
) -> None:
    """The leader lock goes with the connection: a relay whose connection is cut must not go
    on publishing without it. It stops, its supervisor starts it again, it takes the lock on a
    new connection and publishes what came meanwhile, each row once."""
    topic = f"test.relay-conn-lost.{uuid.uuid4().hex[:8]}"
    await ensure_topics(BOOTSTRAP, [topic], partitions=1)
    producer = build_producer(BOOTSTRAP, client_id="relay-conn-lost-test")
    await producer.start()
    relay = OutboxRelay(pool, producer, Metrics("lost"), idle_poll_s=0.1)
    run = asyncio.create_task(supervised("outbox-relay", relay.run))
    before, after = [uuid.uuid4() for _ in range(5)], [uuid.uuid4() for _ in range(5)]
    try:
        await wait_for(lambda: _holds_lock(pool))
        await add_rows(pool, topic, before)
        await wait_for(lambda: published(pool))
        first_leader = await _leader_pid(pool)
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", first_leader)
        await add_rows(pool, topic, after)
        await wait_for(lambda: published(pool), timeout=15)

        async def new_leader() -> bool:
            pid = await _leader_pid(pool)
            return pid is not None and pid != first_leader

        await wait_for(new_leader, timeout=15)
    finally:
        relay.stop()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await producer.stop()
    values = await _read_all(topic, expected=10)
    assert sorted(values) == sorted(str(i) for i in before + after)


async def _leader_pid(pool: asyncpg.Pool) -> int | None:
    return await pool.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
        "AND objid = ('outbox'::regclass)::oid AND granted"
    )


async def _true(value: bool) -> bool:
    return value


async def _holds_lock(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval(
        "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' "
        "AND objid = ('outbox'::regclass)::oid AND granted"
    )


async def _read_all(topic: str, expected: int) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    values: list[str] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(values) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(r.value.decode() for r in records)
        # Anything more (a duplicate) would arrive right behind: read once more.
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            values.extend(r.value.decode() for r in records)
    finally:
        await consumer.stop()
    return values
