"""The Kafka entry point's consumer loop: how the requests of one fetch are scheduled (fakes
for Kafka and the handler; no broker, no database)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from intake.entrypoints.kafka.consumer import RequestConsumerLoop
from sanalpos_common import topics
from sanalpos_common.observability import Metrics

TOPIC = topics.MERCHANT_REQUESTS


class SlowHandler:
    """Takes `seconds` per request and records how many were in flight at once."""

    def __init__(self, seconds: float = 0.05, fail_on: bytes | None = None) -> None:
        self.seconds, self.fail_on = seconds, fail_on
        self.in_flight = self.most_in_flight = 0
        self.handled: list[tuple[int, int]] = []  # (partition, offset) in completion order

    async def __call__(self, topic: str, message: Any) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.seconds)
            if message.value == self.fail_on:
                raise asyncio.CancelledError  # a stop in the middle of a request
            self.handled.append((message.partition, message.offset))
        finally:
            self.in_flight -= 1


def request(partition: int, offset: int, key: bytes, value: bytes = b"{}") -> SimpleNamespace:
    return SimpleNamespace(
        topic=TOPIC, partition=partition, offset=offset, key=key, value=value, headers=[]
    )


def loop(handler: SlowHandler, concurrency: int = 8) -> RequestConsumerLoop:
    entry = RequestConsumerLoop(
        name="intake-requests-test",
        topics=(TOPIC,),
        bootstrap_servers="unused",
        handler=handler,
        dead_letter_producer=None,  # type: ignore[arg-type]
        metrics=Metrics("test"),
        retry_backoff_s=0,
    )
    entry.concurrency = concurrency
    return entry


def one_request_per_partition(partitions: int) -> dict[TopicPartition, list[Any]]:
    return {
        TopicPartition(TOPIC, p): [request(p, 10 + p, f"merchant-{p}".encode())]
        for p in range(partitions)
    }


async def test_the_partitions_of_one_fetch_are_handled_side_by_side() -> None:
    handler = SlowHandler()
    entry = loop(handler)
    await entry._process_batches(one_request_per_partition(3))
    # One after the other, a partition's single request waited for the previous one's.
    assert handler.most_in_flight == 3
    assert sorted(handler.handled) == [(0, 10), (1, 11), (2, 12)]
    assert entry._uncommitted == {TopicPartition(TOPIC, p): 11 + p for p in range(3)}


async def test_the_partitions_share_one_concurrency_bound() -> None:
    handler = SlowHandler(seconds=0.02)
    entry = loop(handler, concurrency=2)
    batches = {
        TopicPartition(TOPIC, p): [request(p, o, f"k-{p}-{o}".encode()) for o in range(3)]
        for p in range(3)
    }
    await entry._process_batches(batches)
    assert handler.most_in_flight == 2
    assert len(handler.handled) == 9


async def test_requests_with_one_key_stay_in_offset_order() -> None:
    handler = SlowHandler(seconds=0.01)
    entry = loop(handler)
    batches = {
        TopicPartition(TOPIC, 0): [request(0, o, b"same-key") for o in range(4)],
        TopicPartition(TOPIC, 1): [request(1, 7, b"other")],
    }
    await entry._process_batches(batches)
    assert [o for p, o in handler.handled if p == 0] == [0, 1, 2, 3]


async def test_a_stop_mid_fetch_commits_only_the_finished_partitions() -> None:
    handler = SlowHandler(seconds=0.01)
    slow = SlowHandler(seconds=5)

    async def by_value(topic: str, message: Any) -> None:
        await (slow if message.value == b"slow" else handler)(topic, message)

    entry = loop(handler)
    entry.handler = by_value
    batches = {
        TopicPartition(TOPIC, 0): [request(0, 5, b"a")],
        TopicPartition(TOPIC, 1): [request(1, 8, b"b", value=b"slow")],
    }
    running = asyncio.create_task(entry._process_batches(batches))
    while TopicPartition(TOPIC, 0) not in entry._uncommitted:  # partition 0 done first
        await asyncio.sleep(0.005)
    assert slow.in_flight == 1
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert entry._uncommitted == {TopicPartition(TOPIC, 0): 6}


async def test_a_request_cancelled_on_its_own_still_ends_the_loop() -> None:
    handler = SlowHandler(seconds=0.01, fail_on=b"stop")
    entry = loop(handler)
    batches = {
        TopicPartition(TOPIC, 0): [request(0, 5, b"a")],
        TopicPartition(TOPIC, 1): [request(1, 8, b"b", value=b"stop")],
    }
    with pytest.raises(asyncio.CancelledError):
        await entry._process_batches(batches)
    assert TopicPartition(TOPIC, 1) not in entry._uncommitted
