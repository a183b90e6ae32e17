"""A scratch schema with the shared migrations (outbox, inbox) in the test database."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sanalpos_common.db import COMMON_MIGRATIONS, load_migrations
from sanalpos_common.settings import local_database_url


@pytest.fixture()
async def scratch_pool() -> AsyncIterator[asyncpg.Pool]:
    url = os.environ.get("SETTLEMENT_DATABASE_URL", local_database_url("settlement"))
    schema = f"test_scratch_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    pool = await asyncpg.create_pool(
        url, min_size=1, max_size=6, server_settings={"search_path": schema}
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
