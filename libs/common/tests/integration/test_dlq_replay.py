"""A message dead-lettered by a (simulated) bug, replayed with `sanalpos dlq replay` after the
fix, is processed exactly once, and the audit says who replayed it. Real Kafka, a real
consumer loop with the idempotent (inbox) handler on a scratch schema."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from sanalpos_common.cli import main
from sanalpos_common.db import UnitOfWork
from sanalpos_common.dlq import DeadLetterOps
from sanalpos_common.messaging.admin import ensure_topics
from sanalpos_common.messaging.consumer import ConsumerLoop
from sanalpos_common.messaging.idempotent import idempotent
from sanalpos_common.messaging.producer import build_producer
from sanalpos_common.observability import Metrics
from sanalpos_common.schemas import events
from sanalpos_common.schemas.codec import encode, new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.testing import wait_for
from sanalpos_common.topics import dead_letter_topic

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")


class Probe(BaseModel):
    payment_id: uuid.UUID
    label: str


@dataclass
class Rig:
    topic: str
    consumer: str
    pool: asyncpg.Pool
    loop: ConsumerLoop
    bug: dict[str, bool]

    async def publish(self, label: str) -> uuid.UUID:
        envelope = new_envelope(
            self.topic,
            Probe(payment_id=uuid.uuid4(), label=label),
            correlation_id=uuid.uuid4(),
            producer="test",
        )
        producer = build_producer(BOOTSTRAP, client_id="dlq-test-publisher")
        await producer.start()
        try:
            await producer.send_and_wait(self.topic, encode(envelope), key=label.encode())
        finally:
            await producer.stop()
        return envelope.message_id

    async def applied(self, label: str) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM applied WHERE label = $1", label))


def cli(*argv: str) -> Any:
    return asyncio.to_thread(main, ["dlq", *argv, "--bootstrap", BOOTSTRAP])


@pytest.fixture()
async def rig(pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    topic = f"test.dlq-replay.{uuid.uuid4().hex[:8]}.v1"
    consumer = f"dlqtest-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(events.EVENT_MODELS, topic, Probe)
    await ensure_topics(BOOTSTRAP, [topic, dead_letter_topic(consumer)], partitions=1)
    await pool.execute("CREATE TABLE applied (message_id UUID, label TEXT)")
    bug = {"on": True}

    async def handle(uow: UnitOfWork, _topic: str, envelope: Envelope[Any]) -> None:
        if bug["on"] and envelope.payload.label.startswith("bad"):
            raise ZeroDivisionError("simulated bug in the handler")
        await uow.conn.execute(
            "INSERT INTO applied VALUES ($1, $2)", envelope.message_id, envelope.payload.label
        )

    producer = build_producer(BOOTSTRAP, client_id=consumer)
    await producer.start()
    loop = ConsumerLoop(
        name=consumer,
        topics=(topic,),
        bootstrap_servers=BOOTSTRAP,
        handler=idempotent(pool, consumer, handle),
        dead_letter_producer=producer,
        metrics=Metrics(consumer),
        max_attempts=2,
        retry_backoff_s=0.05,
    )
    task = asyncio.create_task(loop.run())
    try:
        yield Rig(topic, consumer, pool, loop, bug)
    finally:
        loop.stop()
        await asyncio.wait_for(task, 15)
        await producer.stop()


async def unhandled(rig: Rig) -> list[Any]:
    return await DeadLetterOps(BOOTSTRAP).dead_letters([rig.consumer])


async def test_replayed_after_the_fix_is_processed_exactly_once_and_audited(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    message_id = await rig.publish("bad-1")
    await rig.publish("good-1")  # the partition moves on past the poison one
    await wait_for(lambda: rig.applied("good-1"), timeout=30)
    [dead] = await wait_for(lambda: unhandled(rig), timeout=30)
    assert "simulated bug" in dead.reason and dead.message_id == str(message_id)
    assert await rig.applied("bad-1") == 0

    assert await cli("list", "--consumer", rig.consumer) == 0
    listed = capsys.readouterr().out
    assert f"from {rig.topic}[0]@0" in listed and "1 dead letter(s) unhandled" in listed

    rig.bug["on"] = False  # the fix is deployed
    assert (
        await cli(
            "replay",
            "--consumer",
            rig.consumer,
            "--all",
            "--operator",
            "ops-ayse",
            "--note",
            "fix #42",
        )
        == 0
    )
    assert "1 record(s) replayed by ops-ayse" in capsys.readouterr().out
    await wait_for(lambda: rig.applied("bad-1"), timeout=30)

    # Replaying again (forced) reaches the consumer, whose inbox drops it: still once.
    processed = rig.loop.progress.processed
    assert (
        await cli(
            "replay",
            "--consumer",
            rig.consumer,
            "--message-id",
            str(message_id),
            "--force",
            "--operator",
            "ops-ayse",
        )
        == 0
    )
    await wait_for(lambda: _true(rig.loop.progress.processed > processed), timeout=30)
    assert await rig.applied("bad-1") == 1
    assert await unhandled(rig) == []

    capsys.readouterr()
    assert await cli("history", "--consumer", rig.consumer) == 0
    history = capsys.readouterr().out.splitlines()
    assert len(history) == 2
    assert all("replay" in line and "by ops-ayse" in line for line in history)
    assert "note: fix #42" in history[0] and f"-> {rig.topic}[0]@2" in history[0]


async def test_purge_marks_records_handled_without_replaying(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    await rig.publish("bad-a")
    await rig.publish("bad-b")
    await wait_for(lambda: _len_at_least(unhandled(rig), 2), timeout=30)
    assert await cli("replay", "--consumer", rig.consumer) == 2  # no selector: refused
    assert (
        await cli("purge", "--consumer", rig.consumer, "--key", "bad-a", "--operator", "ops-mehmet")
        == 0
    )
    [left] = await unhandled(rig)
    assert left.key == b"bad-b"
    assert await cli("purge", "--consumer", rig.consumer, "--all", "--operator", "ops-mehmet") == 0
    assert await unhandled(rig) == []
    assert await rig.applied("bad-a") == 0 and await rig.applied("bad-b") == 0
    capsys.readouterr()
    assert await cli("list", "--consumer", rig.consumer, "--include-handled") == 0
    assert "2 dead letter(s) in all" in capsys.readouterr().out


async def _true(value: bool) -> bool:
    return value


async def _len_at_least(records: Any, count: int) -> bool:
    return len(await records) >= count
