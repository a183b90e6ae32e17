"""Adapts a faust message to what sanalpos_common's dead-lettering expects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


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
