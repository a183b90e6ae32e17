"""The `jti` of every client-side encrypted card used (table used_jwe, migration 0010)."""

from __future__ import annotations

import asyncpg

from intake.service_layer.client_encryption import JweReused, JweUse
from sanalpos_common.db import Connection


class UsedJweRepository:
    def __init__(self, conn: Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def record(self, use: JweUse) -> None:
        """In the transaction of what the token pays for; raises JweExpired for a stale
        token and JweReused for one used before (that transaction then rolls back)."""
        use.check_fresh()
        inserted = await self.conn.fetchval(
            "INSERT INTO used_jwe (merchant_id, jti, expires_at) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            use.merchant_id,
            use.jti,
            use.expires_at,
        )
        if inserted is None:
            raise JweReused("JWE was used before (jti): make a new one for each request")

    async def purge(self) -> int:
        """Deletes uses whose token would be refused as stale now anyway."""
        result = await self.conn.execute("DELETE FROM used_jwe WHERE expires_at < now()")
        return int(result.split()[-1])
