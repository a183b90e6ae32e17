"""The one envelope every Kafka message travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

P = TypeVar("P", bound=BaseModel)


class Envelope(BaseModel, Generic[P]):
    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    correlation_id: uuid.UUID = Field(description="The payment id")
    causation_id: uuid.UUID | None = Field(
        default=None, description="message_id of the message that caused this one"
    )
    producer: str
    payload: P


class RawEnvelope(BaseModel):
    """Envelope with the payload left as a dict, for routing before typed parsing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: uuid.UUID
    type: str
    schema_version: int
    occurred_at: datetime
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    producer: str
    payload: dict[str, Any]
