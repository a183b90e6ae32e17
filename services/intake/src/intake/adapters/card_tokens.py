"""Stored cards (card_tokens). Rows carry the PAN only as ciphertext, and lose it on delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from sanalpos_common.db import Connection

_PUBLIC_COLUMNS = (
    "token, merchant_id, fingerprint, brand, bin, last4, masked_number, exp_month, exp_year, "
    "created_at"
)


class CardTokenRepository:
    def __init__(self, conn: Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def add(self, row: dict[str, Any]) -> None:
        await self.conn.execute(
            "INSERT INTO card_tokens (token, merchant_id, pan_ciphertext, fingerprint, brand, "
            "bin, last4, masked_number, exp_month, exp_year, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            row["token"],
            row["merchant_id"],
            row["pan_ciphertext"],
            row["fingerprint"],
            row["brand"],
            row["bin"],
            row["last4"],
            row["masked_number"],
            row["exp_month"],
            row["exp_year"],
            row["created_at"],
        )

    async def get(self, merchant_id: str, token: str) -> asyncpg.Record | None:
        """A live stored card of this merchant, without its ciphertext."""
        return await self.conn.fetchrow(
            f"SELECT {_PUBLIC_COLUMNS} FROM card_tokens "  # noqa: S608 - constant columns
            "WHERE token = $1 AND merchant_id = $2 AND deleted_at IS NULL",
            token,
            merchant_id,
        )

    async def for_payment(self, merchant_id: str, token: str) -> asyncpg.Record | None:
        """A live stored card with its ciphertext, locked against a concurrent delete."""
        return await self.conn.fetchrow(
            f"SELECT {_PUBLIC_COLUMNS}, pan_ciphertext FROM card_tokens "  # noqa: S608
            "WHERE token = $1 AND merchant_id = $2 AND deleted_at IS NULL FOR SHARE",
            token,
            merchant_id,
        )

    async def page(
        self, merchant_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[asyncpg.Record]:
        """Newest first; `after` is the (created_at, token) of the last row already seen."""
        if after is None:
            return await self.conn.fetch(
                f"SELECT {_PUBLIC_COLUMNS} FROM card_tokens "  # noqa: S608
                "WHERE merchant_id = $1 AND deleted_at IS NULL "
                "ORDER BY created_at DESC, token DESC LIMIT $2",
                merchant_id,
                limit,
            )
        return await self.conn.fetch(
            f"SELECT {_PUBLIC_COLUMNS} FROM card_tokens "  # noqa: S608
            "WHERE merchant_id = $1 AND deleted_at IS NULL AND (created_at, token) < ($3, $4) "
            "ORDER BY created_at DESC, token DESC LIMIT $2",
            merchant_id,
            limit,
            after[0],
            after[1],
        )

    async def delete(self, merchant_id: str, token: str) -> bool:
        """Destroys the ciphertext (the row keeps masked details); False when not found."""
        deleted = await self.conn.fetchval(
            "UPDATE card_tokens SET pan_ciphertext = NULL, deleted_at = now() "
            "WHERE token = $1 AND merchant_id = $2 AND deleted_at IS NULL RETURNING 1",
            token,
            merchant_id,
        )
        return deleted is not None
