"""Bytes <-> typed envelopes. Decoding errors are poison messages, not retries."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ValidationError

from sanalpos_common.schemas.envelope import Envelope, RawEnvelope
from sanalpos_common.schemas.events import (
    EVENT_MODELS,
    correlation_id_of,
    event_type,
    topic_of,
)


class UndecodableMessage(Exception):
    """The bytes are not a valid envelope of the expected type: dead-letter it."""


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode()


def new_envelope(
    topic: str,
    payload: BaseModel,
    *,
    correlation_id: uuid.UUID,
    producer: str,
    causation_id: uuid.UUID | None = None,
) -> Envelope[Any]:
    return Envelope[type(payload)](  # type: ignore[misc,operator]
        type=event_type(topic),
        correlation_id=correlation_id,
        causation_id=causation_id,
        producer=producer,
        payload=payload,
    )


def envelope_for(
    payload: BaseModel,
    *,
    producer: str,
    causation_id: uuid.UUID | None = None,
    correlation_id: uuid.UUID | None = None,
) -> Envelope[Any]:
    """The envelope of an event from its payload alone: topic, type and correlation follow
    from the payload's type (`topic_of`, `correlation_id_of`)."""
    return new_envelope(
        topic_of(payload),
        payload,
        correlation_id=correlation_id or correlation_id_of(payload),
        producer=producer,
        causation_id=causation_id,
    )


def decode(topic: str, raw: bytes | None) -> Envelope[Any]:
    if raw is None:
        raise UndecodableMessage("empty message value")
    model = EVENT_MODELS.get(topic)
    if model is None:
        raise UndecodableMessage(f"no schema registered for topic {topic!r}")
    try:
        envelope = RawEnvelope.model_validate_json(raw)
        if envelope.type != event_type(topic):
            raise UndecodableMessage(f"type {envelope.type!r} does not belong on topic {topic!r}")
        payload = model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise UndecodableMessage(_summarize(exc)) from exc
    fields = envelope.model_dump(exclude={"payload"})
    return Envelope[model](payload=payload, **fields)  # type: ignore[valid-type]


def _summarize(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return "; ".join(parts)[:2000]
