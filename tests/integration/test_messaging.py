"""Redelivery and poison messages against the running settlement service."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sanalpos_common import topics
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.events import PaymentCaptured
from tests.integration.support import ServiceProcess, close_batches, eventually


def captured_envelope(merchant_id: str, amount: int = 10_000) -> Any:
    payment_id = uuid.uuid4()
    payload = PaymentCaptured(
        payment_id=payment_id,
        merchant_id=merchant_id,
        amount=amount,
        currency="TRY",
        installments=1,
        auth_code="TEST01",
    )
    return new_envelope(
        topics.PAYMENT_CAPTURED, payload, correlation_id=payment_id, producer="test"
    )


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []
            ]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def read_from(
    bootstrap: str, start: dict[TopicPartition, int], timeout_s: float = 20
) -> list[Any]:
    """Every record from `start` up to the topic's end as it is now."""
    ends = await end_offsets(bootstrap, next(iter(start)).topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        records: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        for tp in start:
            while await consumer.position(tp) < ends[tp]:
                assert asyncio.get_running_loop().time() < deadline, "topic not read to its end"
                for messages in (await consumer.getmany(tp, timeout_ms=500)).values():
                    records.extend(messages)
        return records
    finally:
        await consumer.stop()


async def consumed_past(bootstrap: str, group: str, partition: TopicPartition, offset: int) -> bool:
    """Whether the group has committed past `offset`: it handled that record (the shared
    consumer loop commits after the database transaction)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=[partition])
    finally:
        await admin.close()
    meta = committed.get(partition)
    return meta is not None and meta.offset > offset


async def test_the_same_message_twice_changes_nothing_the_second_time(
    services: dict[str, ServiceProcess],
    endpoints: dict[str, str],
    databases: dict[str, asyncpg.Pool],
) -> None:
    bootstrap = endpoints["KAFKA_BOOTSTRAP_SERVERS"]
    merchant_id = f"mer_replay_{uuid.uuid4().hex[:12]}"
    envelope = captured_envelope(merchant_id)
    payment_id = envelope.correlation_id
    settled_before = await end_offsets(bootstrap, topics.PAYMENT_SETTLED)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        key = str(payment_id).encode()
        await producer.send_and_wait(topics.PAYMENT_CAPTURED, encode(envelope), key=key)
        second = await producer.send_and_wait(topics.PAYMENT_CAPTURED, encode(envelope), key=key)
    finally:
        await producer.stop()

    partition = TopicPartition(second.topic, second.partition)
    await eventually(lambda: consumed_past(bootstrap, "settlement", partition, second.offset))
    settlement = databases["settlement"]
    assert (
        await settlement.fetchval(
            "SELECT count(*) FROM inbox WHERE message_id = $1", envelope.message_id
        )
        == 1
    )
    transactions = await settlement.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE payment_id = $1", payment_id
    )
    entries = await settlement.fetchval(
        "SELECT count(*) FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id "
        "WHERE t.payment_id = $1",
        payment_id,
    )
    assert transactions == 1
    assert entries == 3  # clearing debit, merchant credit, fee credit

    # The payment settles when its batch closes: once, with the capture counted once.
    closed = await close_batches(services["settlement"].url, merchant_id)
    assert [(b["payment_count"], b["totals"]["gross_amount"]) for b in closed] == [(1, 10_000)]
    assert await close_batches(services["settlement"].url, merchant_id) == []

    async def settled_published() -> int | None:
        row = await settlement.fetchrow(
            "SELECT count(*) AS made, count(published_at) AS published FROM outbox "
            "WHERE topic = $1 AND message_key = $2",
            topics.PAYMENT_SETTLED,
            str(payment_id),
        )
        assert row is not None
        return row["made"] if row["made"] and row["made"] == row["published"] else None

    assert await eventually(settled_published) == 1
    settled = [r for r in await read_from(bootstrap, settled_before) if r.key == key]
    assert len(settled) == 1


async def test_undecodable_message_is_dead_lettered_and_the_next_is_processed(
    services: dict[str, ServiceProcess],
    endpoints: dict[str, str],
    databases: dict[str, asyncpg.Pool],
) -> None:
    bootstrap = endpoints["KAFKA_BOOTSTRAP_SERVERS"]
    dlq = topics.dead_letter_topic("settlement")
    dlq_before = await end_offsets(bootstrap, dlq)
    poison_key = uuid.uuid4().bytes.hex().encode()
    poison = b'{"this is": "not an envelope"'
    good = captured_envelope("mer_poison_test")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        # Same key: same partition, so the good message is queued behind the poison one.
        await producer.send_and_wait(
            topics.PAYMENT_CAPTURED, poison, key=poison_key, headers=[("origin", b"test")]
        )
        await producer.send_and_wait(topics.PAYMENT_CAPTURED, encode(good), key=poison_key)
    finally:
        await producer.stop()

    async def ledgered() -> int | None:
        return (
            await databases["settlement"].fetchval(
                "SELECT count(*) FROM ledger_transactions WHERE payment_id = $1",
                good.correlation_id,
            )
            or None
        )

    assert await eventually(ledgered) == 1

    async def dead_letters() -> list[Any] | None:
        return [r for r in await read_from(bootstrap, dlq_before) if r.key == poison_key] or None

    dead = await eventually(dead_letters)
    assert len(dead) == 1
    record = dead[0]
    assert record.value == poison
    headers = dict(record.headers)
    assert headers["origin"] == b"test"
    assert headers["dlq.original.topic"] == topics.PAYMENT_CAPTURED.encode()
    assert b"undecodable" in headers["dlq.error"]
