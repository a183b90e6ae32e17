"""Bytes <-> typed envelopes. Decoding errors are poison messages, not retries."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
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
    if not isinstance(payload, EVENT_MODELS.get(topic, BaseModel)):
        raise TypeError(f"{type(payload).__name__} does not travel on {topic!r}")
    # The payload is a validated, frozen model and the other fields are ours: constructing
    # without validating again is safe and costs a fraction (this runs once per event).
    return _envelope_class(type(payload)).model_construct(
        message_id=uuid.uuid4(),
        type=event_type(topic),
        schema_version=1,
        occurred_at=datetime.now(UTC),
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
        # One validation pass over envelope and payload together: the common case.
        envelope = _envelope_class(model).model_validate_json(raw)
    except ValidationError:
        _raise_why_undecodable(topic, model, raw)
        raise
    if envelope.type != event_type(topic):
        raise UndecodableMessage(f"type {envelope.type!r} does not belong on topic {topic!r}")
    return envelope


def _raise_why_undecodable(topic: str, model: type[BaseModel], raw: bytes) -> None:
    """Explains a refused message the way a reader wants it: a wrong type first, then the
    envelope's or the payload's own field errors (paths relative to the payload)."""
    try:
        envelope = RawEnvelope.model_validate_json(raw)
        if envelope.type != event_type(topic):
            raise UndecodableMessage(f"type {envelope.type!r} does not belong on topic {topic!r}")
        model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise UndecodableMessage(_summarize(exc)) from exc
    raise UndecodableMessage("envelope does not validate")


@functools.cache
def _envelope_class(model: type[BaseModel]) -> type[Envelope[Any]]:
    return Envelope[model]  # type: ignore[valid-type]


def _summarize(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return "; ".join(parts)[:2000]
