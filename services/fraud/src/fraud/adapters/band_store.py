"""fraud_merchant_bands table: per-merchant review/decline thresholds."""

from __future__ import annotations

import asyncpg

from fraud.adapters.policy_store import Conn

_BANDS = "SELECT review_at, decline_at FROM fraud_merchant_bands WHERE merchant_id = $1"


async def bands(conn: Conn | asyncpg.Pool, merchant_id: str) -> asyncpg.Record | None:
    """review_at, decline_at of the merchant; None when it has the default bands."""
    return await conn.fetchrow(_BANDS, merchant_id)


async def lock_bands(conn: Conn, merchant_id: str) -> asyncpg.Record | None:
    """As `bands`, row-locked until the transaction ends."""
    return await conn.fetchrow(_BANDS + " FOR UPDATE", merchant_id)


async def upsert_bands(
    conn: Conn, merchant_id: str, review_at: int, decline_at: int, actor: str
) -> None:
    await conn.execute(
        "INSERT INTO fraud_merchant_bands (merchant_id, review_at, decline_at, updated_by) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id) DO UPDATE SET review_at = $2, "
        "decline_at = $3, updated_by = $4, updated_at = now()",
        merchant_id,
        review_at,
        decline_at,
        actor,
    )
