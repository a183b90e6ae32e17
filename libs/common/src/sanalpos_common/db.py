"""asyncpg pool, unit of work (state + outbox + inbox in one transaction), migrations."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel

from sanalpos_common import tracing
from sanalpos_common.schemas.codec import encode, envelope_for
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import topic_of as envelope_topic

log = logging.getLogger(__name__)

# A plain connection or one borrowed from a pool: both run queries the same way.
Connection = asyncpg.Connection | PoolConnectionProxy

COMMON_MIGRATIONS = Path(__file__).parent / "migrations"
OUTBOX_CHANNEL = "sanalpos_outbox"


_SESSION_STATE_PIDS: set[int] = set()
"""Backends of pooled connections that took session-level state (LISTEN, a session advisory
lock): only they need the full reset query when they go back to the pool."""


def keeps_session_state(conn: Connection) -> None:
    """Mark a pooled connection that LISTENs or holds a session advisory lock, so its release
    runs asyncpg's full reset (UNLISTEN *, pg_advisory_unlock_all(), RESET ALL, CLOSE ALL)."""
    _SESSION_STATE_PIDS.add(conn.get_server_pid())


async def _reset_on_release(conn: asyncpg.Connection) -> None:
    # asyncpg has already rolled back any open transaction and dropped Python-side
    # listeners. Our queries set nothing else at session level (SET LOCAL, xact locks and
    # cursors end with their transaction), so the default reset query would be a wasted
    # round trip on every release; measured at 5-7% of intake's CPU under load.
    pid = conn.get_server_pid()
    if pid in _SESSION_STATE_PIDS:
        _SESSION_STATE_PIDS.discard(pid)
        await conn.execute(conn.get_reset_query())


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    init: Callable[[Any], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """`init`: run on each new connection (tests attach a query logger there)."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        reset=_reset_on_release,
        init=cast(Any, init),
    )
    if pool is None:  # pragma: no cover - asyncpg returns None only when awaited wrongly
        raise RuntimeError("could not create database pool")
    return pool


_Pending = tuple[str, Envelope[Any], str | None]
"""An event waiting for its outbox row: topic, envelope, the emitting span's traceparent."""


class UnitOfWork:
    """One database transaction for a state change, the events it emits and its inbox row.

    `producer` names the service; `cause` is the message being handled (set per message by
    the idempotent consumer), so `emit(payload)` fills in topic, key, correlation, causation
    and producer by itself.
    """

    def __init__(self, conn: Connection, producer: str = "") -> None:
        self.conn = conn
        self.producer = producer
        self.cause: Envelope[Any] | None = None
        self._emitted = 0
        self._deferred: list[_Pending] | None = None
        self.committed_hooks: list[Callable[[], None]] = []

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once this transaction has committed (never when it rolls back): for
        counting outcomes, so a batch retried message by message is not counted twice."""
        self.committed_hooks.append(hook)

    async def mark_processed(self, consumer: str, message_id: Any, topic: str) -> bool:
        """Record the message as processed; False when it already was (a duplicate)."""
        row = await self.conn.fetchval(
            "INSERT INTO inbox (consumer, message_id, topic) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            consumer,
            message_id,
            topic,
        )
        return row is not None

    async def mark_all_processed(
        self, consumer: str, messages: Sequence[tuple[Any, str]]
    ) -> set[Any]:
        """`mark_processed` for a batch of (message_id, topic) in one statement; returns the
        ids that were new (the others are duplicates)."""
        rows = await self.conn.fetch(
            "INSERT INTO inbox (consumer, message_id, topic) "
            "SELECT $1, m, t FROM unnest($2::uuid[], $3::text[]) AS x(m, t) "
            "ON CONFLICT DO NOTHING RETURNING message_id",
            consumer,
            [m for m, _ in messages],
            [t for _, t in messages],
        )
        return {row["message_id"] for row in rows}

    async def emit(self, payload: BaseModel, *, correlation_id: Any | None = None) -> Envelope[Any]:
        """Write one event to the outbox from its payload alone; returns its envelope."""
        (envelope,) = await self.emit_all([payload], correlation_id=correlation_id)
        return envelope

    async def emit_all(
        self, payloads: Sequence[BaseModel], *, correlation_id: Any | None = None
    ) -> list[Envelope[Any]]:
        """`emit` for several events at once (one statement)."""
        if not self.producer:
            raise RuntimeError(
                "this unit of work has no producer: pass unit_of_work(pool, producer)"
            )
        cause = self.cause.message_id if self.cause is not None else None
        envelopes = [
            envelope_for(
                payload, producer=self.producer, causation_id=cause, correlation_id=correlation_id
            )
            for payload in payloads
        ]
        # Taken now, while the handler's span is current: the write may be deferred.
        traceparent = tracing.current_traceparent() if tracing.active else None
        if traceparent is not None and envelopes:
            tracing.tag_payment(envelopes[0].correlation_id)
        items = [
            (envelope_topic(p), e, traceparent) for p, e in zip(payloads, envelopes, strict=True)
        ]
        if self._deferred is not None:
            self._deferred.extend(items)
        else:
            await self._write(items)
        return envelopes

    def defer_emits(self) -> None:
        """Collect emitted events and write them in one statement at `flush` (the unit of
        work's end): a consumer batch's events cost one round trip, not one per event.
        Their order, and so their outbox order, is kept."""
        if self._deferred is None:
            self._deferred = []

    async def flush(self) -> None:
        items, self._deferred = self._deferred, None
        if items:
            await self._write(items)

    async def emit_envelope(self, topic: str, envelope: Envelope[Any]) -> None:
        """Write a ready-made envelope (tests, replays); handlers use `emit(payload)`."""
        await self.emit_many([(topic, envelope)])

    async def emit_many(self, items: Sequence[tuple[str, Envelope[Any]]]) -> None:
        traceparent = tracing.current_traceparent() if tracing.active else None
        await self._write([(topic, env, traceparent) for topic, env in items])

    async def _write(self, items: Sequence[_Pending]) -> None:
        if not items:
            return
        await self.conn.executemany(
            "INSERT INTO outbox (topic, message_key, message_id, payload, headers) "
            "VALUES ($1, $2, $3, $4, $5::jsonb)",
            [
                (
                    topic,
                    str(env.correlation_id),
                    env.message_id,
                    encode(env),
                    outbox_headers(env, traceparent),
                )
                for topic, env, traceparent in items
            ],
        )
        self._emitted += len(items)

    @property
    def emitted(self) -> int:
        return self._emitted


def outbox_headers(envelope: Envelope[Any], traceparent: str | None) -> str:
    """The outbox row's headers (JSON pairs), sent as Kafka headers by the relay."""
    headers = [["type", envelope.type], ["producer", envelope.producer]]
    if traceparent is not None:
        headers.append([tracing.TRACEPARENT, traceparent])
    return json.dumps(headers)


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, producer: str = "") -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn:
        async with conn.transaction():
            uow = UnitOfWork(conn, producer)
            uow.defer_emits()  # all of the transaction's events in one statement, at its end
            yield uow
            # The outbox's insert trigger wakes the relay on commit (migration 0003).
            await uow.flush()
        for hook in uow.committed_hooks:
            hook()


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(component: str, folder: Path) -> list[Migration]:
    """Files named NNNN_description.sql, applied in version order."""
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        version_text, _, name = path.stem.partition("_")
        if not version_text.isdigit():
            raise ValueError(f"migration file {path.name} must start with a version number")
        migrations.append(Migration(component, int(version_text), name, path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {folder}")
    return migrations


_MIGRATION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  TEXT        NOT NULL,
    version    INT         NOT NULL,
    name       TEXT        NOT NULL,
    checksum   TEXT        NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""
_MIGRATION_LOCK = 7_304_118_201  # any constant: serializes concurrent migrators


async def migrate(pool: asyncpg.Pool, service: str, service_folder: Path) -> list[Migration]:
    """Apply the shared plumbing migrations, then the service's. Returns what was applied."""
    plan = load_migrations("common", COMMON_MIGRATIONS) + load_migrations(service, service_folder)
    applied: list[Migration] = []
    async with pool.acquire() as conn:
        keeps_session_state(conn)
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(_MIGRATION_TABLE)
            done = {
                (r["component"], r["version"]): r["checksum"]
                for r in await conn.fetch(
                    "SELECT component, version, checksum FROM schema_migrations"
                )
            }
            for migration in plan:
                key = (migration.component, migration.version)
                if key in done:
                    if done[key] != migration.checksum:
                        raise RuntimeError(
                            f"migration {migration.component}/{migration.version} changed "
                            "after it was applied; add a new migration instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (component, version, name, checksum) "
                        "VALUES ($1, $2, $3, $4)",
                        migration.component,
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied.append(migration)
                log.info("applied migration %s/%04d_%s", *key, migration.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied
