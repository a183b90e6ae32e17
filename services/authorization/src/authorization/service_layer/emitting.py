"""Writes this service's events to the outbox, keyed and correlated by their payment."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.codec import new_envelope

PRODUCER = "authorization"


class Emitter:
    """Emits the events one incoming message (or one expiry) causes for one payment."""

    def __init__(
        self, uow: UnitOfWork, payment_id: uuid.UUID, cause: uuid.UUID | None = None
    ) -> None:
        self.uow = uow
        self.payment_id = payment_id
        self.cause = cause

    async def __call__(self, topic: str, payload: BaseModel) -> None:
        await self.uow.emit_envelope(
            topic,
            new_envelope(
                topic,
                payload,
                correlation_id=self.payment_id,
                causation_id=self.cause,
                producer=PRODUCER,
            ),
        )
