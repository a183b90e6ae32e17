"""3-D Secure challenges not finished within their time limit end `abandoned`: the payment is
declined by authentication. Same locking as the pre-authorization expiry: a batch of due rows
FOR UPDATE SKIP LOCKED, each changed only while still pending, so a late answer from the
shopper and the sweep of one challenge run one after the other, never both."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg

from authorization.service_layer.handlers import AuthorizationHandlers
from sanalpos_common.db import unit_of_work

log = logging.getLogger(__name__)


@dataclass
class ChallengeExpiry:
    pool: asyncpg.Pool
    handlers: AuthorizationHandlers
    producer: str
    interval_s: float = 15.0
    batch_size: int = 200
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def expire_due(self) -> int:
        """Decline one batch of due challenges in one transaction; returns how many."""
        async with unit_of_work(self.pool, producer=self.producer) as uow:
            challenges = self.handlers.repositories.challenges(uow)
            due = await challenges.lock_due(self.handlers.clock(), self.batch_size)
            for challenge in due:
                await self.handlers.expire_challenge(uow, challenge)
        if due:
            log.info("%d 3-D Secure challenges expired", len(due))
        return len(due)

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                expired = await self.expire_due()
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                log.warning("challenge expiry rolled back (%s); retrying", type(exc).__name__)
                expired = 0
            if expired == self.batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)

    def stop(self) -> None:
        self._stop.set()
