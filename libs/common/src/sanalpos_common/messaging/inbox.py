"""Purge of processed-message (inbox) rows once no redelivery of their message can happen.

Every consumer writes one inbox row per message; without a purge the table grows forever.
A row is needed only while its message can still be read again, that is while the message is
still in its topic: the retention (ServiceSettings.inbox_retention_hours, validated to be at
least the topics' retention plus one segment) says how long that is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg

log = logging.getLogger(__name__)


@dataclass
class InboxPurge:
    pool: asyncpg.Pool
    retention_hours: int
    every_s: float = 600.0
    batch_size: int = 10_000
    """Rows deleted per statement: short transactions, no long lock on a big backlog."""

    async def purge(self) -> int:
        """Delete every row older than the retention; returns how many."""
        total = 0
        while True:
            result = await self.pool.execute(
                "DELETE FROM inbox WHERE ctid = ANY(ARRAY("
                "SELECT ctid FROM inbox WHERE processed_at < now() - make_interval(hours => $1) "
                "LIMIT $2))",
                self.retention_hours,
                self.batch_size,
            )
            deleted = int(result.split()[-1])
            total += deleted
            if deleted < self.batch_size:
                break
        if total:
            log.info("purged %d inbox rows older than %d h", total, self.retention_hours)
        return total

    async def run_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.purge()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("inbox purge failed (%s); next try later", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every_s)
