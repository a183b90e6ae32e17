"""Outbox relay: publishes pending outbox rows in id order and marks them sent.

One relay per database publishes at a time: with several replicas or worker processes, two
relays taking different rows of one payment could publish them out of order. Each relay
asks for a session advisory lock on its listening connection and stands by until it has it
(the lock goes with the connection, so a relay that dies hands over at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer

from sanalpos_common.db import OUTBOX_CHANNEL
from sanalpos_common.observability import Metrics

log = logging.getLogger(__name__)
RELAY_LEADER_LOCK = 730_411_820  # any int4 of this project's own; see the module doc


@dataclass
class OutboxRelay:
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    metrics: Metrics
    batch_size: int = 500
    idle_poll_s: float = 1.0
    retention_hours: int = 24
    standby_poll_s: float = 2.0
    standing_by: bool = False
    """True while another relay of this database holds the leader lock."""
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    last_success_monotonic: float | None = None

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        listener = await self.pool.acquire()
        await listener.add_listener(OUTBOX_CHANNEL, self._notified)
        try:
            while not self._stopping and not await listener.fetchval(
                # Keyed by the outbox table itself, so services (or tests) with their own
                # schema in one database each get their own leader.
                "SELECT pg_try_advisory_lock($1, 'outbox'::regclass::oid::int)",
                RELAY_LEADER_LOCK,
            ):
                self.standing_by = True
                await self._sleep_until_notified(self.standby_poll_s)
            self.standing_by = False
            while not self._stopping:
                try:
                    published = await self.publish_pending()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("outbox relay error: %s", type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                if published < self.batch_size:
                    await self._sleep_until_notified()
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener(OUTBOX_CHANNEL, self._notified)
            await self.pool.release(listener)

    def _notified(self, *_: object) -> None:
        self._wakeup.set()

    async def _sleep_until_notified(self, timeout_s: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=timeout_s or self.idle_poll_s)
        self._wakeup.clear()

    async def publish_pending(self) -> int:
        """Publish one batch. Sent rows are marked only after Kafka acknowledged them all."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, message_key, payload, headers FROM outbox "
                "WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                self.last_success_monotonic = asyncio.get_running_loop().time()
                return 0
            futures = [
                await self.producer.send(
                    row["topic"],
                    value=row["payload"],
                    key=row["message_key"].encode(),
                    headers=[(k, v.encode()) for k, v in _headers(row["headers"])],
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
        self.metrics.outbox_published.inc(len(rows))
        self.last_success_monotonic = asyncio.get_running_loop().time()
        return len(rows)

    async def purge_published(self) -> int:
        result = await self.pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(hours => $1)",
            self.retention_hours,
        )
        return int(result.split()[-1])

    async def pending(self) -> int:
        count, _ = await self.backlog()
        return count

    async def backlog(self) -> tuple[int, float]:
        """Unpublished rows and the oldest one's age in seconds (both from the partial
        index of pending rows); also sets the two gauges."""
        row = await self.pool.fetchrow(
            "SELECT count(*) AS pending, coalesce(extract(epoch FROM now() - ("
            "  SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1"
            ")), 0)::float8 AS oldest FROM outbox WHERE published_at IS NULL"
        )
        assert row is not None  # an aggregate always answers one row
        count, oldest = int(row["pending"]), max(0.0, float(row["oldest"]))
        self.metrics.outbox_backlog.set(count)
        self.metrics.outbox_oldest_age.set(oldest)
        return count, oldest

    async def sample(self) -> None:
        await self.backlog()


def _headers(raw: str | list[list[str]] | None) -> list[tuple[str, str]]:
    items = json.loads(raw) if isinstance(raw, str) else raw
    return [(str(k), str(v)) for k, v in (items or [])]
