"""What the metrics read from PostgreSQL: the outbox backlog and its oldest row's age, and
counting hooks that run only when the unit of work commits. Real PostgreSQL (a scratch
schema with the shared migrations)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sanalpos_common.db import COMMON_MIGRATIONS, load_migrations, unit_of_work
from sanalpos_common.messaging.outbox import OutboxRelay
from sanalpos_common.metrics import Metrics
from sanalpos_common.settings import local_database_url


@pytest.fixture()
async def pool() -> AsyncIterator[asyncpg.Pool]:
    url = os.environ.get("SETTLEMENT_DATABASE_URL", local_database_url("settlement"))
    schema = f"test_metrics_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=2, server_settings={"search_path": schema}
    )
    assert pool is not None
    for migration in load_migrations("common", COMMON_MIGRATIONS):
        await pool.execute(migration.sql)
    try:
        yield pool
    finally:
        await pool.close()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


async def test_outbox_backlog_and_oldest_age_are_sampled_at_scrape_time(
    pool: asyncpg.Pool,
) -> None:
    metrics = Metrics("t")
    relay = OutboxRelay(pool=pool, producer=None, metrics=metrics)  # type: ignore[arg-type]
    metrics.add_sampler(relay.sample)
    await metrics.sample()
    sample = metrics.registry.get_sample_value
    assert sample("sanalpos_outbox_backlog_messages") == 0
    assert sample("sanalpos_outbox_oldest_age_seconds") == 0

    await pool.executemany(
        "INSERT INTO outbox (topic, message_key, message_id, payload, created_at) "
        "VALUES ('t', 'k', $1, '\\x00', now() - make_interval(secs => $2))",
        [(uuid.uuid4(), 90.0), (uuid.uuid4(), 5.0)],
    )
    metrics._sampled_at = 0.0  # past the once-a-second guard
    await metrics.sample()
    assert sample("sanalpos_outbox_backlog_messages") == 2
    age = sample("sanalpos_outbox_oldest_age_seconds")
    assert age is not None and 90 <= age < 120


async def test_after_commit_hooks_run_only_when_the_transaction_commits(
    pool: asyncpg.Pool,
) -> None:
    counted: list[str] = []
    async with unit_of_work(pool, "t") as uow:
        uow.after_commit(lambda: counted.append("committed"))
        assert counted == []  # not while the transaction is open
    assert counted == ["committed"]

    with pytest.raises(RuntimeError):
        async with unit_of_work(pool, "t") as uow:
            uow.after_commit(lambda: counted.append("rolled back"))
            raise RuntimeError("handler failed")
    assert counted == ["committed"]
