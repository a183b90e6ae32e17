"""Merchants and their API keys (stored as SHA-256 of a random key, never the key)."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from sanalpos_common.db import Connection


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(mode: str) -> str:
    return f"sk_{mode}_{secrets.token_urlsafe(32)}"


class MerchantRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def merchant_for_key(self, key: str) -> str | None:
        return await self.pool.fetchval(
            "SELECT merchant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            hash_api_key(key),
        )

    async def create(
        self, merchant_id: str, name: str, currency: str, time_zone: str, api_key: str
    ) -> bool:
        """False when the merchant id is taken."""
        async with self.pool.acquire() as conn, conn.transaction():
            created = await conn.fetchval(
                "INSERT INTO merchants (id, name, settlement_currency, time_zone) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                merchant_id,
                name,
                currency,
                time_zone,
            )
            if created is None:
                return False
            await self._add_key(conn, merchant_id, api_key)
            return True

    async def ensure(self, merchant_id: str, name: str, api_key: str) -> None:
        """Idempotent seeding (development demo merchant)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO merchants (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                merchant_id,
                name,
            )
            await self._add_key(conn, merchant_id, api_key)

    @staticmethod
    async def _add_key(conn: Connection, merchant_id: str, api_key: str) -> None:
        mode = "live" if api_key.startswith("sk_live_") else "test"
        await conn.execute(
            "INSERT INTO api_keys (key_hash, merchant_id, mode, prefix) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            hash_api_key(api_key),
            merchant_id,
            mode,
            api_key[:12],
        )

    async def revoke_key(self, api_key: str) -> None:
        await self.pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1", hash_api_key(api_key)
        )
