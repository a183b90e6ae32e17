"""Settlement against the real local PostgreSQL (a private schema per run, dropped afterwards)
and, for the whole-service test, the real Kafka with a private consumer group."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from sanalpos_common.db import create_pool, migrate
from sanalpos_common.messaging import idempotent
from sanalpos_common.messaging.idempotent import IdempotentHandler
from sanalpos_common.schemas.codec import new_envelope
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.settings import local_database_url
from settlement.adapters.repositories import PostgresRepositories
from settlement.bootstrap import CONSUMER, MIGRATIONS
from settlement.service_layer.handlers import SettlementHandlers

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
BASE_DSN = os.environ.get("SETTLEMENT_DATABASE_URL", local_database_url("settlement"))


@pytest.fixture(scope="session")
async def schema_dsn() -> AsyncIterator[str]:
    schema = f"settlement_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(BASE_DSN)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{BASE_DSN}?search_path={schema}"
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@pytest.fixture(scope="session")
async def pool(schema_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(schema_dsn, max_size=6)
    await migrate(pool, CONSUMER, MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def handle(pool: asyncpg.Pool) -> IdempotentHandler:
    """The consumer's handler, exactly as the service wires it, fed without Kafka."""
    return idempotent(pool, CONSUMER, SettlementHandlers(PostgresRepositories()).table())


def envelope(topic: str, payload: BaseModel, at: datetime, key: uuid.UUID) -> Envelope[Any]:
    made = new_envelope(topic, payload, correlation_id=key, producer="tests")
    return made.model_copy(update={"occurred_at": at})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
