"""Merchants' request-signing secrets, encrypted at rest (table merchant_signing_secrets).

HMAC verification needs the secret itself, so unlike API keys it cannot be stored as a hash:
it is envelope-encrypted (AES-256-GCM data key wrapped by the `signing` keyring, which lives in
configuration, never in the database) with associated data naming merchant and secret id.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from intake.domain.request_signing import new_signing_secret
from sanalpos_common.crypto import DecryptionError, KeyringError, decrypt, encrypt
from sanalpos_common.crypto.wrapping import KeyWrapper

KEYRING_ID = "signing"
LIVE_SECRETS = 2  # the newest and the one it replaced: merchants switch over without a gap
_DISPLAY_PREFIX = 12
log = logging.getLogger(__name__)


def secret_aad(merchant_id: str, secret_id: uuid.UUID) -> bytes:
    return f"signing-secret|{merchant_id}|{secret_id}".encode()


@dataclass(frozen=True)
class CreatedSecret:
    id: uuid.UUID
    merchant_id: str
    secret: str
    prefix: str
    created_at: datetime


@dataclass
class SigningSecretStore:
    """Create, list, revoke; and the live secrets of a merchant for verification, cached for
    `cache_ttl_s` (a rotation or revocation takes effect within that time)."""

    pool: asyncpg.Pool
    keyring: KeyWrapper
    cache_ttl_s: float = 5.0
    _cache: dict[str, tuple[float, tuple[str, ...]]] = field(default_factory=dict)

    def _open(self, merchant_id: str, row: asyncpg.Record) -> str | None:
        """The secret in clear; None (logged) when its key is gone: the merchant rotates."""
        try:
            aad = secret_aad(merchant_id, row["id"])
            return decrypt(self.keyring, row["ciphertext"], aad).decode()
        except (DecryptionError, KeyringError) as exc:
            log.error("signing secret %s does not decrypt: %s", row["id"], type(exc).__name__)
            return None

    async def merchant_exists(self, merchant_id: str) -> bool:
        found = await self.pool.fetchval("SELECT 1 FROM merchants WHERE id = $1", merchant_id)
        return found is not None

    async def create(self, merchant_id: str) -> CreatedSecret:
        """A new secret; all but the newest previous one are revoked at the same time."""
        secret_id, secret = uuid.uuid4(), new_signing_secret()
        ciphertext = encrypt(self.keyring, secret.encode(), secret_aad(merchant_id, secret_id))
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialises concurrent rotations of one merchant.
            await conn.execute("SELECT 1 FROM merchants WHERE id = $1 FOR UPDATE", merchant_id)
            created_at = await conn.fetchval(
                "INSERT INTO merchant_signing_secrets (id, merchant_id, ciphertext, prefix) "
                "VALUES ($1, $2, $3, $4) RETURNING created_at",
                secret_id,
                merchant_id,
                ciphertext,
                secret[:_DISPLAY_PREFIX],
            )
            await conn.execute(
                "UPDATE merchant_signing_secrets SET revoked_at = now() "
                "WHERE merchant_id = $1 AND revoked_at IS NULL AND id NOT IN ("
                "  SELECT id FROM merchant_signing_secrets WHERE merchant_id = $1 "
                "  AND revoked_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $2)",
                merchant_id,
                LIVE_SECRETS,
            )
        self._cache.pop(merchant_id, None)
        return CreatedSecret(secret_id, merchant_id, secret, secret[:_DISPLAY_PREFIX], created_at)

    async def listing(self, merchant_id: str) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT id, prefix, created_at, revoked_at FROM merchant_signing_secrets "
            "WHERE merchant_id = $1 ORDER BY created_at DESC, id DESC",
            merchant_id,
        )

    async def revoke(self, merchant_id: str, secret_id: uuid.UUID) -> bool:
        """False when the merchant has no such live secret."""
        revoked = await self.pool.fetchval(
            "UPDATE merchant_signing_secrets SET revoked_at = now() "
            "WHERE id = $1 AND merchant_id = $2 AND revoked_at IS NULL RETURNING 1",
            secret_id,
            merchant_id,
        )
        self._cache.pop(merchant_id, None)
        return revoked is not None

    async def live_secrets(self, merchant_id: str) -> tuple[str, ...]:
        """The merchant's live secrets in clear (empty for an unknown merchant)."""
        cached = self._cache.get(merchant_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.cache_ttl_s:
            return cached[1]
        rows = await self.pool.fetch(
            "SELECT id, ciphertext FROM merchant_signing_secrets "
            "WHERE merchant_id = $1 AND revoked_at IS NULL "
            "ORDER BY created_at DESC, id DESC LIMIT $2",
            merchant_id,
            LIVE_SECRETS,
        )
        found = tuple(s for s in (self._open(merchant_id, row) for row in rows) if s)
        if found:  # unknown merchant ids (anyone can send them) do not grow the cache
            self._cache[merchant_id] = (now, found)
        return found
