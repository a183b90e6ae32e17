"""Pre-authorizations never captured lapse: their hold goes back to the card.

The scan locks a batch of due rows with FOR UPDATE SKIP LOCKED and changes each only while it
is still `authorized`. A capture takes the same row lock, so a capture and an expiry of one
payment run one after the other and the second finds the first's result: never both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from authorization.domain.lifecycle import Authorization
from authorization.service_layer.ports import Issuer, Repositories
from sanalpos_common.db import UnitOfWork, unit_of_work
from sanalpos_common.schemas.events import PaymentExpired, payment_ref

log = logging.getLogger(__name__)


async def expire_preauth(
    uow: UnitOfWork,
    issuer: Issuer,
    repositories: Repositories,
    state: Authorization,
    now: datetime,
) -> None:
    """Release the hold of a row-locked, due pre-authorization and announce it."""
    released = await issuer.release(uow.conn, state.payment_id)
    await repositories.authorizations(uow).mark_expired(state.payment_id)
    await uow.emit(
        PaymentExpired(
            **payment_ref(state, amount=released),
            expired_at=state.expires_at or now,
        ),
    )
    log.info("pre-authorization expired; hold of %d released", released)


@dataclass
class PreauthExpiry:
    pool: asyncpg.Pool
    issuer: Issuer
    repositories: Repositories
    clock: Callable[[], datetime]
    producer: str
    """The service name its events carry."""
    interval_s: float = 60.0
    batch_size: int = 500
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def expire_due(self) -> int:
        """Expire one batch of due pre-authorizations in one transaction; returns how many."""
        now = self.clock()
        async with unit_of_work(self.pool, producer=self.producer) as uow:
            authorizations = self.repositories.authorizations(uow)
            due = await authorizations.lock_due_preauths(now, self.batch_size)
            for state in due:
                await expire_preauth(uow, self.issuer, self.repositories, state, now)
        return len(due)

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                expired = await self.expire_due()
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                # A consumer batch held card balances this batch needed; try again next round.
                log.warning("expiry scan rolled back (%s); retrying", type(exc).__name__)
                expired = 0
            if expired == self.batch_size:
                continue  # more are due: no pause
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)

    def stop(self) -> None:
        self._stop.set()
