"""Wraps a state-changing handler so a redelivered message changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.schemas.envelope import Envelope

log = logging.getLogger(__name__)

TransactionalHandler = Callable[[UnitOfWork, str, Envelope[Any]], Awaitable[None]]


def idempotent(
    pool: asyncpg.Pool, consumer: str, handler: TransactionalHandler
) -> Callable[[str, Envelope[Any]], Awaitable[None]]:
    """Inbox row, state change and outbox rows commit together or not at all."""

    async def handle(topic: str, envelope: Envelope[Any]) -> None:
        async with unit_of_work(pool) as uow:
            if not await uow.mark_processed(consumer, envelope.message_id, topic):
                log.info("duplicate message %s skipped", envelope.message_id)
                return
            await handler(uow, topic, envelope)

    return handle
