"""Wraps a state-changing handler so a redelivered message changes nothing.

The wrapped handler works one message per transaction; its `batch` attribute applies a whole
consumer batch in one transaction (one commit instead of one per message). The consumer loop
uses `batch` first and falls back to one message at a time when the batch fails, so a poison
message still gets its own retries and dead-letter record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from sanalpos_common import tracing
from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.schemas.envelope import Envelope

log = logging.getLogger(__name__)

TransactionalHandler = Callable[[UnitOfWork, str, Envelope[Any]], Awaitable[None]]


@dataclass(frozen=True)
class IdempotentHandler:
    pool: asyncpg.Pool
    consumer: str
    handler: TransactionalHandler
    producer: str | None = None
    """The service name its emitted events carry; the consumer name when not given."""

    async def __call__(self, topic: str, envelope: Envelope[Any]) -> None:
        """Inbox row, state change and outbox rows commit together or not at all."""
        await self.batch([(topic, envelope)])

    async def batch(self, items: Sequence[tuple[str, Envelope[Any]]]) -> None:
        async with unit_of_work(self.pool, self.producer or self.consumer) as uow:
            new = await uow.mark_all_processed(
                self.consumer, [(envelope.message_id, topic) for topic, envelope in items]
            )
            for topic, envelope in items:
                if envelope.message_id not in new:
                    log.info("duplicate message %s skipped", envelope.message_id)
                    continue
                new.discard(envelope.message_id)  # a second copy in the same batch is one too
                uow.cause = envelope
                if not tracing.active:
                    await self.handler(uow, topic, envelope)
                    continue
                with tracing.activate(tracing.span_for(envelope.message_id)):
                    await self.handler(uow, topic, envelope)
            uow.cause = None


def idempotent(
    pool: asyncpg.Pool,
    consumer: str,
    handler: TransactionalHandler,
    producer: str | None = None,
) -> IdempotentHandler:
    return IdempotentHandler(pool, consumer, handler, producer)
