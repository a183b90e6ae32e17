"""Dead-lettering: the original bytes, key and headers survive, plus why and where from.

Dead-lettering never fails on size: the copy carries extra headers, so a record that was
just under the limit would not fit any more (and a consumer whose dead letter cannot be
written retries the same message forever, stalling its partition). A copy that would pass
`MAX_MESSAGE_BYTES` keeps a prefix of the value, with the original length and SHA-256 digest
in headers; an oversized key is replaced by its digest; original headers beyond a budget are
dropped (and counted).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from sanalpos_common.messaging.producer import MAX_MESSAGE_BYTES
from sanalpos_common.observability import redact
from sanalpos_common.topics import dead_letter_topic

Headers = list[tuple[str, bytes]]
SIZE_MARGIN_BYTES = 1024
"""Kept free below the producer's limit: the size estimate is the client's, not the broker's."""
MAX_KEY_BYTES = 1024
MAX_ORIGINAL_HEADER_BYTES = 64 * 1024


def dead_letter_headers(message: Any, consumer: str, error: str, attempts: int) -> Headers:
    """The original headers, then why and where from."""
    return _header_pairs(message.headers) + _why(message, consumer, error, attempts)


def _why(message: Any, consumer: str, error: str, attempts: int) -> Headers:
    extra = {
        "dlq.consumer": consumer,
        "dlq.error": redact(error)[:4000],
        "dlq.attempts": str(attempts),
        "dlq.original.topic": message.topic,
        "dlq.original.partition": str(message.partition),
        "dlq.original.offset": str(message.offset),
        "dlq.failed_at": datetime.now(UTC).isoformat(),
    }
    return [(k, v.encode()) for k, v in extra.items()]


def _header_pairs(headers: Any) -> Headers:
    """Kafka headers as (name, bytes) pairs, whether they came as pairs or as a mapping."""
    items = headers.items() if hasattr(headers, "items") else (headers or [])
    return [(str(k), v if isinstance(v, bytes) else str(v).encode()) for k, v in items]


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode()


def _size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


def _bounded_headers(original: Headers) -> tuple[Headers, Headers]:
    """(original headers within the budget, notes about what was dropped)."""
    kept: Headers = []
    used = 0
    for name, value in original:
        used += len(name.encode()) + len(value)
        if used > MAX_ORIGINAL_HEADER_BYTES:
            return kept, [("dlq.original.headers-dropped", str(len(original) - len(kept)).encode())]
        kept.append((name, value))
    return kept, []


def fit_dead_letter(
    message: Any, consumer: str, error: str, attempts: int, limit: int = MAX_MESSAGE_BYTES
) -> tuple[bytes | None, bytes | None, Headers]:
    """(key, value, headers) of the dead-letter copy, within `limit` bytes."""
    original, notes = _bounded_headers(_header_pairs(message.headers))
    headers = original + _why(message, consumer, error, attempts) + notes
    key: bytes | None = message.key
    if key is not None and len(key) > MAX_KEY_BYTES:
        headers.append(("dlq.original.key-sha256", _digest(key)))
        key = _digest(key)
    value: bytes | None = message.value
    budget = limit - SIZE_MARGIN_BYTES
    if value is not None and _size(key, value, headers) > budget:
        headers += [
            ("dlq.value-truncated", b"true"),
            ("dlq.original.value-length", str(len(value)).encode()),
            ("dlq.original.value-sha256", _digest(value)),
        ]
        room = max(0, budget - _size(key, b"", headers))
        value = value[:room]
    return key, value, headers


async def send_to_dead_letter(
    producer: AIOKafkaProducer, message: Any, consumer: str, error: str, attempts: int
) -> None:
    limit = min(MAX_MESSAGE_BYTES, getattr(producer, "_max_request_size", MAX_MESSAGE_BYTES))
    key, value, headers = fit_dead_letter(message, consumer, error, attempts, limit)
    await producer.send_and_wait(dead_letter_topic(consumer), value=value, key=key, headers=headers)
