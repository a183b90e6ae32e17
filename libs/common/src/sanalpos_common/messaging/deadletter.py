"""Dead-lettering: the original bytes, key and headers survive, plus why and where from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from sanalpos_common.observability import redact
from sanalpos_common.topics import dead_letter_topic


def dead_letter_headers(
    message: Any, consumer: str, error: str, attempts: int
) -> list[tuple[str, bytes]]:
    extra = {
        "dlq.consumer": consumer,
        "dlq.error": redact(error)[:4000],
        "dlq.attempts": str(attempts),
        "dlq.original.topic": message.topic,
        "dlq.original.partition": str(message.partition),
        "dlq.original.offset": str(message.offset),
        "dlq.failed_at": datetime.now(UTC).isoformat(),
    }
    return _header_pairs(message.headers) + [(k, v.encode()) for k, v in extra.items()]


def _header_pairs(headers: Any) -> list[tuple[str, bytes]]:
    """Kafka headers as (name, bytes) pairs, whether they came as pairs or as a mapping."""
    items = headers.items() if hasattr(headers, "items") else (headers or [])
    return [(str(k), v if isinstance(v, bytes) else str(v).encode()) for k, v in items]


async def send_to_dead_letter(
    producer: AIOKafkaProducer, message: Any, consumer: str, error: str, attempts: int
) -> None:
    await producer.send_and_wait(
        dead_letter_topic(consumer),
        value=message.value,
        key=message.key,
        headers=dead_letter_headers(message, consumer, error, attempts),
    )
