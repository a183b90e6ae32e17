"""Dead-lettering faust messages: adapts them to what sanalpos_common's dead-lettering
expects, and publishes them until the broker has them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from sanalpos_common.messaging.deadletter import send_to_dead_letter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetterSource:
    """The .topic .partition .offset .key .value .headers that send_to_dead_letter reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @classmethod
    def from_faust(cls, message: Any) -> DeadLetterSource:
        """From a faust `Message`: raw key/value bytes as they were read from Kafka."""
        return cls(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=_as_bytes(message.key),
            value=_as_bytes(message.value),
            headers=normalise_headers(message.headers),
        )


def _as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def normalise_headers(headers: Any) -> list[tuple[str, bytes]]:
    """faust hands headers over as a list of pairs or as a mapping; Kafka wants pairs."""
    if not headers:
        return []
    items: Iterable[Any] = headers.items() if isinstance(headers, Mapping) else headers
    result: list[tuple[str, bytes]] = []
    for key, value in items:
        name = key.decode() if isinstance(key, bytes) else str(key)
        result.append((name, _as_bytes(value) or b""))
    return result


@dataclass(frozen=True)
class FaustDeadLetters:
    """Publishes to the consumer's dead-letter topic, retrying while Kafka is unreachable: a
    message is acked only after its dead-letter copy is on the broker."""

    producer: AIOKafkaProducer
    consumer: str
    backoff_s: float = 0.2

    async def publish(self, message: Any, error: str, attempts: int) -> DeadLetterSource:
        source = DeadLetterSource.from_faust(message)
        delay = self.backoff_s
        while True:
            try:
                await send_to_dead_letter(self.producer, source, self.consumer, error, attempts)
                return source
            except (KafkaError, OSError) as exc:
                log.warning("dead-letter publish failed (%s), retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
