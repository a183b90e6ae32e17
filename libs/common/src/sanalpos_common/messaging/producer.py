"""Idempotent Kafka producer: acks=all, retries without duplicates, small linger for batching.

`ReconnectingProducer` is what services use: after a broker restart an aiokafka idempotent
producer can be left for good in a state it does not recover from (every send fails with
OutOfOrderSequenceNumber, or a send never completes). The wrapper bounds every wait and, on
such a failure, replaces the producer with a fresh one (new producer id) before the caller's
retry. Everything else is passed through to the current producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    UnknownProducerId,
)

from sanalpos_common.messaging.security import kafka_client_kwargs

MAX_MESSAGE_BYTES = 1024 * 1024
"""The largest record this platform publishes, and the limit it sets on the topics it creates
(`max.message.bytes`), matching Kafka's defaults (broker `message.max.bytes` is 1 MiB plus a
12-byte batch overhead): a record the producer accepts the broker accepts too. A record over
it is refused by the producer at once (MessageSizeTooLargeError) and never retried: the
outbox relay poisons its row, dead-lettering truncates the value."""
TOPIC_MAX_MESSAGE_BYTES = MAX_MESSAGE_BYTES + 12
"""What `max.message.bytes` counts: the record batch, one record plus the batch header."""

log = logging.getLogger(__name__)

# Failures after which this producer instance is not to be trusted with another send.
FATAL_PRODUCER_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
    ProducerClosed,
    KafkaTimeoutError,
    TimeoutError,
)


def build_producer(bootstrap_servers: str, client_id: str, linger_ms: int = 5) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        max_request_size=MAX_MESSAGE_BYTES,
        compression_type=None,
        **kafka_client_kwargs(),
    )


class ReconnectingProducer:
    """A drop-in for AIOKafkaProducer that replaces its producer after a fatal failure."""

    def __init__(
        self, factory: Callable[[], AIOKafkaProducer], send_timeout_s: float = 30.0
    ) -> None:
        self._factory = factory
        self._producer = factory()
        self._lock = asyncio.Lock()
        self.send_timeout_s = send_timeout_s
        self.generation = 0
        """How many times the producer was replaced."""

    @property
    def current(self) -> AIOKafkaProducer:
        return self._producer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        generation = self.generation
        try:
            future: asyncio.Future[Any] = await self._producer.send(topic, *args, **kwargs)
        except FATAL_PRODUCER_ERRORS as exc:
            await self.replace(generation, exc)
            raise
        return future

    async def send_and_wait(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        generation = self.generation
        try:
            async with asyncio.timeout(self.send_timeout_s):
                future = await self._producer.send(topic, *args, **kwargs)
                return await future
        except FATAL_PRODUCER_ERRORS as exc:
            await self.replace(generation, exc)
            raise

    async def replace(self, seen_generation: int, reason: BaseException) -> None:
        """Swap in a fresh producer, unless another caller already did since `seen_generation`
        (the generation current when the failed send began)."""
        async with self._lock:
            if self.generation != seen_generation:
                return
            log.warning(
                "kafka producer replaced after %s: %s", type(reason).__name__, str(reason)[:200]
            )
            old, fresh = self._producer, self._factory()
            await fresh.start()
            self._producer = fresh
            self.generation += 1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.stop(), timeout=5)
