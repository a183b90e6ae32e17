"""Helpers the test suites share (loopback ports, polling, consumer groups, handlers run
without a database). Not used by the services."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel

from sanalpos_common.db import Connection, UnitOfWork
from sanalpos_common.messaging.routing import HandlerTable
from sanalpos_common.messaging.security import kafka_client_kwargs
from sanalpos_common.schemas.codec import envelope_for
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import topic_of

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float = 15.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    interval: float = 0.05,
) -> T:
    """Poll until `probe()` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def start_group_at_end(
    bootstrap_servers: str, group: str, names: Iterable[str], producer: AIOKafkaProducer
) -> None:
    """Commit `group`'s offsets at the end of every partition of `names`, so a service started
    with that group reads only what a test publishes from now on."""
    partitions = [
        TopicPartition(name, p)
        for name in names
        for p in sorted(await producer.partitions_for(name))
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        **kafka_client_kwargs(),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()


class NoDatabase:
    """Stands in for the connection of a unit of work that must not reach a database."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a handler under unit test used the database ({name})")


class RecordingUnitOfWork(UnitOfWork):
    """A unit of work without a database: `emit` works as in production (topic, correlation,
    causation, producer from the payload and the cause) and the outbox is this list."""

    def __init__(self, producer: str, cause: Envelope[Any] | None = None) -> None:
        super().__init__(cast(Connection, NoDatabase()), producer)
        self.cause = cause
        self.outbox: list[tuple[str, Envelope[Any]]] = []
        self.traceparents: list[str | None] = []
        """The `traceparent` each outbox row would carry (None while tracing is off)."""

    async def _write(self, items: Sequence[tuple[str, Envelope[Any], str | None]]) -> None:
        for topic, envelope, traceparent in items:
            self.outbox.append((topic, envelope))
            self.traceparents.append(traceparent)
        self._emitted += len(items)

    @property
    def events(self) -> list[BaseModel]:
        return [envelope.payload for _, envelope in self.outbox]

    @property
    def topics(self) -> list[str]:
        return [topic for topic, _ in self.outbox]


async def deliver(
    table: HandlerTable,
    payload: BaseModel,
    *,
    producer: str,
    occurred_at: datetime | None = None,
) -> RecordingUnitOfWork:
    """Route one message through a service's handler table the way its consumer does, in a
    fresh recording unit of work; returns that unit of work to read what was emitted."""
    envelope = envelope_for(payload, producer="tests")
    if occurred_at is not None:
        envelope = envelope.model_copy(update={"occurred_at": occurred_at})
    uow = RecordingUnitOfWork(producer, cause=envelope)
    await table(uow, topic_of(payload), envelope)
    return uow


ASYNCPG_INTROSPECTION = (
    "WITH RECURSIVE typeinfo_tree",
    "SELECT current_setting('jit')",
    "SELECT set_config('jit'",
)
"""asyncpg's type introspection: once per new connection and type, not per payment."""


class StatementLog:
    """The statements sent by every connection it is attached to (asyncpg's query logger:
    one entry per round trip, an executemany counting once), whitespace-normalized and
    without asyncpg's own type introspection. For tests that bound a hot path's round trips:
    `create_pool(dsn, init=log.attach)`, or `conn.add_query_logger(log)`."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, record: Any) -> None:
        statement = " ".join(record.query.split())
        if not statement.startswith(ASYNCPG_INTROSPECTION):
            self.queries.append(statement)

    async def attach(self, conn: Any) -> None:
        conn.add_query_logger(self)

    async def mark(self) -> int:
        """How many so far (a position to slice `queries` from)."""
        await asyncio.sleep(0)  # loggers are called soon after each query, not during it
        return len(self.queries)

    async def take(self) -> list[str]:
        """The statements since the last take, and forget them."""
        await asyncio.sleep(0)
        taken, self.queries = self.queries, []
        return taken
