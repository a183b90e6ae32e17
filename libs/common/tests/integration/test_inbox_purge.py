"""Processed-message (inbox) rows are purged once older than the retention, against real
PostgreSQL (a scratch schema with the shared migrations); newer rows stay, so a redelivery
of their messages is still recognised."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from sanalpos_common.db import unit_of_work
from sanalpos_common.messaging.inbox import InboxPurge
from sanalpos_common.testing import wait_for

RETENTION_H = 192


async def add_rows(pool: asyncpg.Pool, count: int, age_hours: float) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    await pool.executemany(
        "INSERT INTO inbox (consumer, message_id, topic, processed_at) "
        "VALUES ('c', $1, 't', now() - make_interval(secs => $2))",
        [(i, age_hours * 3600) for i in ids],
    )
    return ids


async def test_rows_older_than_the_retention_are_purged_in_batches(pool: asyncpg.Pool) -> None:
    old = await add_rows(pool, 25, RETENTION_H + 1)
    recent = await add_rows(pool, 5, RETENTION_H - 1)

    deleted = await InboxPurge(pool, RETENTION_H, batch_size=10).purge()

    assert deleted == len(old)
    left = {r["message_id"] for r in await pool.fetch("SELECT message_id FROM inbox")}
    assert left == set(recent)


async def test_a_kept_row_still_marks_its_redelivery_a_duplicate(pool: asyncpg.Pool) -> None:
    (recent,) = await add_rows(pool, 1, RETENTION_H - 1)
    await InboxPurge(pool, RETENTION_H).purge()
    async with unit_of_work(pool) as uow:
        assert not await uow.mark_processed("c", recent, "t")  # a duplicate, not new


async def test_the_purge_loop_runs_until_stopped(pool: asyncpg.Pool) -> None:
    await add_rows(pool, 3, RETENTION_H + 5)
    stop = asyncio.Event()
    task = asyncio.create_task(InboxPurge(pool, RETENTION_H, every_s=0.1).run_until(stop))
    try:
        await wait_for(lambda: _empty(pool), timeout=10)
        await add_rows(pool, 2, RETENTION_H + 5)  # the next round takes these too
        await wait_for(lambda: _empty(pool), timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def _empty(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT count(*) = 0 FROM inbox")
