"""Finished webhook deliveries and shopper emails, with their attempts, are deleted once older
than the history retention (`NOTIFICATION_HISTORY_RETENTION_DAYS`).

They hold what merchants were sent and the shoppers' addresses and receipts: kept for support
for the retention, never forever. Pending rows are never touched, however old. Rows go in
batches of short statements; a row and its attempts leave in one statement (the attempts'
foreign key is checked at the statement's end). Every replica may run it: two purges
deleting the same rows wait for each other's row locks and find nothing left.

The retention is at least the inbox's (config), so a redelivered event whose delivery or
email was purged is still dropped by the inbox and is not sent a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg
from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)


# Each: the finished rows past the retention ($1 seconds), at most $2 of them, and their attempts.
PURGES = {
    "webhook_deliveries": """
        WITH doomed AS (
            SELECT id FROM webhook_deliveries WHERE status <> 'pending'
            AND completed_at < now() - make_interval(secs => $1) LIMIT $2
        ), attempts AS (
            DELETE FROM webhook_attempts a USING doomed d WHERE a.delivery_id = d.id
        )
        DELETE FROM webhook_deliveries t USING doomed d WHERE t.id = d.id
    """,
    "shopper_emails": """
        WITH doomed AS (
            SELECT id FROM shopper_emails WHERE status <> 'pending'
            AND completed_at < now() - make_interval(secs => $1) LIMIT $2
        ), attempts AS (
            DELETE FROM shopper_email_attempts a USING doomed d WHERE a.email_id = d.id
        )
        DELETE FROM shopper_emails t USING doomed d WHERE t.id = d.id
    """,
}


def purged_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "sanalpos_notification_history_purged",
        "Finished webhook deliveries and shopper emails deleted after the history retention",
        ["table"],
        registry=registry,
    )


@dataclass
class HistoryPurge:
    pool: asyncpg.Pool
    retention_days: float
    every_s: float = 3600.0
    batch_size: int = 5_000
    purged: Counter | None = None

    async def purge(self) -> dict[str, int]:
        """Rows deleted per table (attempts not counted)."""
        deleted = {table: await self._purge(statement) for table, statement in PURGES.items()}
        if self.purged is not None:
            for table, count in deleted.items():
                self.purged.labels(table).inc(count)
        if any(deleted.values()):
            log.info(
                "purged finished history older than %g days: %s",
                self.retention_days,
                ", ".join(f"{n} {table}" for table, n in deleted.items()),
            )
        return deleted

    async def _purge(self, statement: str) -> int:
        total = 0
        while True:
            result = await self.pool.execute(
                statement, self.retention_days * 86_400, self.batch_size
            )
            deleted = int(result.split()[-1])
            total += deleted
            if deleted < self.batch_size:
                return total

    async def run_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.purge()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("history purge failed (%s); next try later", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every_s)
