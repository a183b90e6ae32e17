"""Merchants and their API keys (stored as SHA-256 of a random key, never the key)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from intake.domain.rate_limit import Limit
from sanalpos_common.db import Connection

KEY_PREFIX_LENGTH = 12
"""`sk_test_` or `sk_live_` and four random characters: enough to tell keys apart in a list."""


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(mode: str) -> str:
    if mode not in {"test", "live"}:
        raise ValueError("mode is test or live")
    return f"sk_{mode}_{secrets.token_urlsafe(32)}"


def key_mode(api_key: str) -> str:
    return "live" if api_key.startswith("sk_live_") else "test"


MERCHANT_COLUMNS = (
    "id, name, settlement_currency, time_zone, cutoff_time, fee_plan, max_installments, "
    "payout_delay_days, payout_plan, version, created_at, updated_at, "
    "always_three_d_secure"  # 3-D Secure
    # --- hosted payment page (issue 11) ---
    ", checkout_locale, checkout_frame_ancestors"
    # --- multi-currency (issue 13, fx) ---
    ", currency_settlement::text AS currency_settlement, fx_markup_bps, fx_no_rate"
)
KEY_COLUMNS = "id, merchant_id, mode, prefix, created_at, revoked_at, rate_per_second, rate_burst"


def _params(values: dict[str, Any]) -> list[Any]:
    """JSONB columns (currency_settlement) travel as JSON text."""
    return [json.dumps(v) if isinstance(v, dict) else v for v in values.values()]


class MerchantStore:
    """SQL for merchant records and key management, on a connection or pool (writes run inside
    the caller's unit of work so that the MerchantUpdated event commits with them)."""

    def __init__(self, db: Connection | asyncpg.Pool) -> None:
        self.db = db

    async def insert(self, values: dict[str, Any]) -> asyncpg.Record | None:
        """None when the merchant id is taken."""
        columns = ", ".join(values)
        params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        return await self.db.fetchrow(
            f"INSERT INTO merchants ({columns}) VALUES ({params}) "  # noqa: S608 - fixed names
            f"ON CONFLICT DO NOTHING RETURNING {MERCHANT_COLUMNS}",
            *_params(values),
        )

    async def get(self, merchant_id: str, *, for_update: bool = False) -> asyncpg.Record | None:
        lock = " FOR UPDATE" if for_update else ""
        return await self.db.fetchrow(
            f"SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id = $1{lock}",  # noqa: S608
            merchant_id,
        )

    async def payment_settings(self, merchant_id: str) -> asyncpg.Record | None:
        """What creating a payment reads of its merchant, in one statement: 3-D Secure always
        or not, and the settlement currency choices (FX)."""
        return await self.db.fetchrow(
            "SELECT always_three_d_secure, settlement_currency, "
            "currency_settlement::text AS choices, fx_no_rate FROM merchants WHERE id = $1",
            merchant_id,
        )

    async def update(self, merchant_id: str, changes: dict[str, Any]) -> asyncpg.Record | None:
        """Applies the changes and bumps the version; None when there is no such merchant."""
        sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
        sets = f"{sets}, " if sets else ""
        return await self.db.fetchrow(
            f"UPDATE merchants SET {sets}version = version + 1, updated_at = now() "  # noqa: S608
            f"WHERE id = $1 RETURNING {MERCHANT_COLUMNS}",
            merchant_id,
            *_params(changes),
        )

    async def add_webhook_endpoint(
        self, endpoint_id: uuid.UUID, merchant_id: str, url: str
    ) -> None:
        await self.db.execute(
            "INSERT INTO webhook_endpoints (id, merchant_id, url) VALUES ($1, $2, $3)",
            endpoint_id,
            merchant_id,
            url,
        )

    async def lock_webhook_endpoints(self, merchant_id: str) -> int:
        """Locks the merchant's row (so concurrent registrations count one after the
        other, in this transaction) and counts its endpoints."""
        await self.db.execute("SELECT 1 FROM merchants WHERE id = $1 FOR UPDATE", merchant_id)
        count = await self.db.fetchval(
            "SELECT count(*) FROM webhook_endpoints WHERE merchant_id = $1", merchant_id
        )
        return int(count or 0)

    async def webhook_endpoints(self, merchant_id: str) -> list[asyncpg.Record]:
        return list(
            await self.db.fetch(
                "SELECT id, url, created_at FROM webhook_endpoints WHERE merchant_id = $1 "
                "ORDER BY created_at, id",
                merchant_id,
            )
        )

    async def page(self, limit: int, after: str | None) -> list[asyncpg.Record]:
        return list(
            await self.db.fetch(
                f"SELECT {MERCHANT_COLUMNS} FROM merchants "  # noqa: S608
                "WHERE ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $1",
                limit,
                after,
            )
        )

    async def add_key(
        self, merchant_id: str, api_key: str, limit: Limit | None = None
    ) -> asyncpg.Record | None:
        """None when this key is stored already."""
        return await self.db.fetchrow(
            "INSERT INTO api_keys (key_hash, merchant_id, mode, prefix, rate_per_second, "  # noqa: S608
            "rate_burst) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING "
            f"RETURNING {KEY_COLUMNS}",
            hash_api_key(api_key),
            merchant_id,
            key_mode(api_key),
            api_key[:KEY_PREFIX_LENGTH],
            None if limit is None else limit.per_second,
            None if limit is None else limit.burst,
        )

    async def keys(self, merchant_id: str) -> list[asyncpg.Record]:
        return list(
            await self.db.fetch(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE merchant_id = $1 "  # noqa: S608
                "ORDER BY created_at DESC, id",
                merchant_id,
            )
        )

    async def key(self, merchant_id: str, key_id: uuid.UUID) -> asyncpg.Record | None:
        return await self.db.fetchrow(
            f"SELECT {KEY_COLUMNS}, key_hash FROM api_keys "  # noqa: S608
            "WHERE merchant_id = $1 AND id = $2",
            merchant_id,
            key_id,
        )

    async def revoke(
        self, merchant_id: str, key_id: uuid.UUID, at: datetime
    ) -> asyncpg.Record | None:
        """Revokes at `at` (now, or later for a rotation's grace period); a key revoked
        earlier keeps its earlier time. None when the merchant has no such key."""
        return await self.db.fetchrow(
            "UPDATE api_keys SET revoked_at = LEAST(COALESCE(revoked_at, $3), $3) "  # noqa: S608
            f"WHERE merchant_id = $1 AND id = $2 RETURNING {KEY_COLUMNS}, key_hash",
            merchant_id,
            key_id,
            at,
        )

    async def revoke_by_key(self, api_key: str) -> None:
        await self.db.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL",
            hash_api_key(api_key),
        )


@dataclass(frozen=True)
class KeyGrant:
    """What an API key authenticates: its merchant, and the key's own rate limit if any."""

    key_id: uuid.UUID
    merchant_id: str
    limit: Limit | None
    revoked_at: datetime | None


class MerchantRepository:
    """Authenticates API keys, with a small in-process cache (no database call per request).

    A key revoked by another process (another replica, the CLI) stops working within
    `cache_ttl_s`; one revoked through this process stops at once (`forget`)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        cache_ttl_s: float = 5.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.cache_ttl_s = cache_ttl_s
        self.cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, KeyGrant]] = OrderedDict()

    async def grant_for_key(self, key: str) -> KeyGrant | None:
        digest = hash_api_key(key)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            grant = cached[1]
        else:
            self._cache.pop(digest, None)
            found = await self._load(digest)
            if found is None:  # unknown keys are not cached: a flood of them stays bounded
                return None
            grant = found
            self._remember(digest, now, grant)
        if grant.revoked_at is not None and grant.revoked_at <= datetime.now(UTC):
            return None
        return grant

    async def merchant_for_key(self, key: str) -> str | None:
        grant = await self.grant_for_key(key)
        return None if grant is None else grant.merchant_id

    def forget(self, key_hash: str) -> None:
        """Drops a key from the cache (after revoking it here)."""
        self._cache.pop(key_hash, None)

    def _remember(self, digest: str, now: float, grant: KeyGrant) -> None:
        if self.cache_ttl_s <= 0:
            return
        self._cache[digest] = (now + self.cache_ttl_s, grant)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def _load(self, digest: str) -> KeyGrant | None:
        row = await self.pool.fetchrow(
            "SELECT id, merchant_id, revoked_at, rate_per_second, rate_burst FROM api_keys "
            "WHERE key_hash = $1 AND (revoked_at IS NULL OR revoked_at > now())",
            digest,
        )
        if row is None:
            return None
        limit = None
        if row["rate_per_second"] is not None:
            per_second = row["rate_per_second"]
            limit = Limit(per_second, row["rate_burst"] or max(1, int(per_second)))
        return KeyGrant(row["id"], row["merchant_id"], limit, row["revoked_at"])
