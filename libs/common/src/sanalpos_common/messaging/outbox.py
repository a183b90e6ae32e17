"""Outbox relay: publishes pending outbox rows in id order and marks them sent.

A row Kafka can never take (over the record size limit, an invalid topic) is poisoned: marked
with `poisoned_at` and `poison_reason`, logged at error level (without its payload) and
counted in `sanalpos_outbox_poisoned_total`; the relay skips it and publishes the rows behind
it. Any other failure (broker down, timeout) publishes nothing of the batch and is retried.

One relay per database publishes at a time: with several replicas or worker processes, two
relays taking different rows of one payment could publish them out of order. Each relay
asks for a session advisory lock on its listening connection and stands by until it has it
(the lock goes with the connection, so a relay that dies hands over at once).

The leader reads and marks its batches on that same connection, with `synchronous_commit`
off: marking a row sent is the only thing it commits, and a mark lost in a database crash
sends the row again, which every consumer's inbox drops, as after a crash between the send
and the mark. So the mark does not wait for the WAL flush, and no pool connection is taken
per wake-up. If that connection is lost, the leader lock is gone with it: the relay stops
(its supervisor starts it again) instead of publishing without the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from sanalpos_common.db import OUTBOX_CHANNEL, Connection, keeps_session_state
from sanalpos_common.messaging.producer import FATAL_PRODUCER_ERRORS
from sanalpos_common.observability import Metrics, redact

log = logging.getLogger(__name__)
RELAY_LEADER_LOCK = 730_411_820  # any int4 of this project's own; see the module doc
NEVER_PUBLISHABLE: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
)
"""Failures that no retry can cure: the row as it is will never be published."""


@dataclass
class OutboxRelay:
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    metrics: Metrics
    batch_size: int = 500
    idle_poll_s: float = 1.0
    retention_hours: int = 24
    standby_poll_s: float = 2.0
    send_timeout_s: float = 30.0
    """A batch not acknowledged within this is rolled back and sent again (an aiokafka send can
    hang for good after a broker restart)."""
    error_backoff_s: float = 1.0
    standing_by: bool = False
    """True while another relay of this database holds the leader lock."""
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    last_success_monotonic: float | None = None
    poisoned_rows: int = 0
    """Poisoned rows in the table at the last `pending()` (they wait for an operator)."""

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def run(self) -> None:
        listener = await self.pool.acquire()
        keeps_session_state(listener)
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
            await listener.execute("SET synchronous_commit = off")  # the marks only: see above
            while not self._stopping:
                if listener.is_closed():
                    raise ConnectionError("outbox relay lost its connection and the leader lock")
                try:
                    published = await self.publish_pending(listener)
                except (
                    OSError,
                    KafkaError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    log.warning("outbox relay error: %s", type(exc).__name__)
                    await asyncio.sleep(self.error_backoff_s)
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

    async def publish_pending(self, conn: Connection) -> int:
        """Publish one batch on the leader's own connection. Sent rows are marked only after
        Kafka acknowledged them all; rows that can never be published are poisoned in the
        same statement.

        No transaction and no row locks: only the leader (the advisory lock above) publishes,
        so reading the batch and marking it are two plain statements, two round trips instead
        of four (BEGIN, SELECT ... FOR UPDATE, UPDATE, COMMIT) on every wake-up. A crash
        between the send and the mark sends the batch again, as a rolled-back transaction
        did; every consumer's inbox drops the copy."""
        rows = await conn.fetch(
            "SELECT id, topic, message_key, payload, headers FROM outbox "
            "WHERE published_at IS NULL AND poisoned_at IS NULL "
            "ORDER BY id LIMIT $1",
            self.batch_size,
        )
        if not rows:
            self.last_success_monotonic = asyncio.get_running_loop().time()
            return 0
        generation = getattr(self.producer, "generation", 0)
        try:
            async with asyncio.timeout(self.send_timeout_s):
                published, poisoned = await self._send_all(rows)
        except FATAL_PRODUCER_ERRORS as exc:
            # Nothing is marked sent: the next round sends the batch again, with a fresh
            # producer. Rows Kafka did get arrive twice; every consumer's inbox drops the
            # copy.
            log.warning("outbox batch of %d not acknowledged (%s)", len(rows), type(exc).__name__)
            replace = getattr(self.producer, "replace", None)
            if replace is not None:
                await replace(generation, exc)
            raise
        await conn.execute(
            "UPDATE outbox o SET "
            "published_at = CASE WHEN x.reason IS NULL THEN now() END, "
            "poisoned_at = CASE WHEN x.reason IS NOT NULL THEN now() END, "
            "poison_reason = x.reason "
            "FROM unnest($1::bigint[], $2::text[]) AS x(id, reason) WHERE o.id = x.id",
            [row["id"] for row in published] + [row["id"] for row, _ in poisoned],
            [None] * len(published) + [reason for _, reason in poisoned],
        )
        self.metrics.outbox_published.inc(len(published))
        for row, reason in poisoned:
            self._alert_poisoned(row, reason)
        self.last_success_monotonic = asyncio.get_running_loop().time()
        return len(rows)

    async def _send_all(
        self, rows: list[asyncpg.Record]
    ) -> tuple[list[asyncpg.Record], list[tuple[asyncpg.Record, str]]]:
        """(acknowledged rows, [(never publishable row, why)]); raises the first other error
        (then nothing is marked and the whole batch is tried again)."""
        poisoned: list[tuple[asyncpg.Record, str]] = []
        sent: list[tuple[asyncpg.Record, asyncio.Future[object]]] = []
        for row in rows:
            try:
                sent.append((row, await self._send(row)))
            except NEVER_PUBLISHABLE as exc:  # refused by the client, before sending
                poisoned.append((row, _reason(exc)))
        results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        published: list[asyncpg.Record] = []
        refused: list[asyncpg.Record] = []
        for (row, _), result in zip(sent, results, strict=True):
            if isinstance(result, NEVER_PUBLISHABLE):
                refused.append(row)
            elif isinstance(result, BaseException):
                raise result
            else:
                published.append(row)
        # The broker refuses a whole batch of one partition for one record too large: send
        # those rows again one at a time, so only the culprit is poisoned. (Its batch-mates
        # may then come after later rows of their partition; this happens only here.)
        for row in refused:
            try:
                await (await self._send(row))
            except NEVER_PUBLISHABLE as exc:
                poisoned.append((row, _reason(exc)))
            else:
                published.append(row)
        return published, poisoned

    async def _send(self, row: asyncpg.Record) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await self.producer.send(
            row["topic"],
            value=row["payload"],
            key=row["message_key"].encode(),
            headers=[(k, v.encode()) for k, v in _headers(row["headers"])],
        )
        return future

    def _alert_poisoned(self, row: asyncpg.Record, reason: str) -> None:
        self.metrics.outbox_poisoned.labels(row["topic"]).inc()
        log.error(
            "outbox row %d poisoned, skipped (topic %s, key %s, %d payload bytes): %s",
            row["id"],
            row["topic"],
            row["message_key"],
            len(row["payload"]),
            reason,
        )

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
        """Unpublished rows and the oldest one's age in seconds (poisoned rows are counted
        apart, in their own gauge); also sets the gauges."""
        row = await self.pool.fetchrow(
            "SELECT count(*) FILTER (WHERE poisoned_at IS NULL) AS pending, "
            "count(*) FILTER (WHERE poisoned_at IS NOT NULL) AS poisoned, "
            "coalesce(extract(epoch FROM now() - ("
            "  SELECT created_at FROM outbox WHERE published_at IS NULL AND poisoned_at IS NULL "
            "  ORDER BY id LIMIT 1"
            ")), 0)::float8 AS oldest FROM outbox WHERE published_at IS NULL"
        )
        assert row is not None  # an aggregate always answers one row
        count, oldest = int(row["pending"]), max(0.0, float(row["oldest"]))
        self.metrics.outbox_backlog.set(count)
        self.metrics.outbox_oldest_age.set(oldest)
        self.metrics.outbox_poisoned_rows.set(row["poisoned"])
        self.poisoned_rows = int(row["poisoned"])
        return count, oldest

    async def sample(self) -> None:
        await self.backlog()


def _headers(raw: str | list[list[str]] | None) -> list[tuple[str, str]]:
    items = json.loads(raw) if isinstance(raw, str) else raw
    return [(str(k), str(v)) for k, v in (items or [])]


def _reason(error: BaseException) -> str:
    return redact(f"{type(error).__name__}: {error}")[:1000]
