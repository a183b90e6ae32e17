"""Helpers the test suites share (loopback ports, polling, consumer groups). Not used by the
services."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 15.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    interval: float = 0.05,
) -> T:
    """Poll until `probe()` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def start_group_at_end(
    bootstrap_servers: str, group: str, names: Iterable[str], producer: AIOKafkaProducer
) -> None:
    """Commit `group`'s offsets at the end of every partition of `names`, so a service started
    with that group reads only what a test publishes from now on."""
    partitions = [
        TopicPartition(name, p)
        for name in names
        for p in sorted(await producer.partitions_for(name))
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()
