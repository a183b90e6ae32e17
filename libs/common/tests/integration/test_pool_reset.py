"""Pooled connections go back clean without a reset round trip per release, and the outbox
wakes its relay from an insert trigger, on commit only."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg

from sanalpos_common.db import OUTBOX_CHANNEL, create_pool, keeps_session_state
from sanalpos_common.settings import local_database_url

LOCK_KEY = 730_001


def _url() -> str:
    return os.environ.get("SETTLEMENT_DATABASE_URL", local_database_url("settlement"))


async def _lock_is_free(key: int) -> bool:
    other = await asyncpg.connect(_url())
    try:
        taken = await other.fetchval("SELECT pg_try_advisory_lock($1)", key)
        if taken:
            await other.execute("SELECT pg_advisory_unlock($1)", key)
        return bool(taken)
    finally:
        await other.close()


async def test_a_marked_connection_drops_its_session_lock_when_released() -> None:
    pool = await create_pool(_url(), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            keeps_session_state(conn)
            await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
            assert not await _lock_is_free(LOCK_KEY)
        assert await _lock_is_free(LOCK_KEY)
    finally:
        await pool.close()


async def test_an_unfinished_transaction_is_rolled_back_on_release() -> None:
    pool = await create_pool(_url(), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("SELECT 1")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT txid_current_if_assigned()") is None
    finally:
        await pool.close()


async def test_an_outbox_insert_notifies_the_relay_on_commit_only(pool: asyncpg.Pool) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(_url())
    await listener.add_listener(OUTBOX_CHANNEL, lambda *args: heard.put_nowait(args[2]))
    try:
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await conn.execute(
                "INSERT INTO outbox (topic, message_key, message_id, payload) "
                "VALUES ('t', 'k', $1, '\\x00')",
                uuid.uuid4(),
            )
            await asyncio.sleep(0.3)
            assert heard.empty(), "nothing is heard before the commit"
            await tx.commit()
        assert await asyncio.wait_for(heard.get(), timeout=5) == OUTBOX_CHANNEL
    finally:
        await listener.close()
