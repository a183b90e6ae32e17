"""Merchants' payout bank accounts, each change versioned for settlement's copy."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from sanalpos_common.db import Connection

_COLUMNS = "id, merchant_id, iban, holder_name, currency, is_default, version, created_at"


class PayoutAccountRepository:
    def __init__(self, db: Connection | asyncpg.Pool) -> None:
        self.db = db

    async def add(
        self,
        account_id: uuid.UUID,
        merchant_id: str,
        iban: str,
        holder_name: str,
        currency: str,
        is_default: bool,
    ) -> dict[str, Any]:
        row = await self.db.fetchrow(
            "INSERT INTO payout_accounts (id, merchant_id, iban, holder_name, currency, "  # noqa: S608
            f"is_default, version) VALUES ($1, $2, $3, $4, $5, $6, 1) RETURNING {_COLUMNS}",
            account_id,
            merchant_id,
            iban,
            holder_name,
            currency,
            is_default,
        )
        return _found(row)

    async def lock_merchant(self, merchant_id: str) -> None:
        """Serializes the merchant's account changes (one default per currency)."""
        await self.db.execute(
            "SELECT pg_advisory_xact_lock(hashtext('payout-accounts:' || $1))", merchant_id
        )

    async def default_of(self, merchant_id: str, currency: str) -> dict[str, Any] | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM payout_accounts WHERE merchant_id = $1 "  # noqa: S608
            "AND currency = $2 AND is_default AND deleted_at IS NULL",
            merchant_id,
            currency,
        )
        return None if row is None else dict(row)

    async def get(self, merchant_id: str, account_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM payout_accounts WHERE merchant_id = $1 "  # noqa: S608
            "AND id = $2 AND deleted_at IS NULL",
            merchant_id,
            account_id,
        )
        return None if row is None else dict(row)

    async def newest_other(
        self, merchant_id: str, currency: str, but: uuid.UUID
    ) -> dict[str, Any] | None:
        row = await self.db.fetchrow(
            f"SELECT {_COLUMNS} FROM payout_accounts WHERE merchant_id = $1 "  # noqa: S608
            "AND currency = $2 AND id <> $3 AND deleted_at IS NULL "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            merchant_id,
            currency,
            but,
        )
        return None if row is None else dict(row)

    async def set_default(self, account_id: uuid.UUID, is_default: bool) -> dict[str, Any]:
        row = await self.db.fetchrow(
            "UPDATE payout_accounts SET is_default = $2, version = version + 1 "  # noqa: S608
            f"WHERE id = $1 RETURNING {_COLUMNS}",
            account_id,
            is_default,
        )
        return _found(row)

    async def delete(self, account_id: uuid.UUID) -> dict[str, Any]:
        row = await self.db.fetchrow(
            "UPDATE payout_accounts SET is_default = false, deleted_at = now(), "  # noqa: S608
            f"version = version + 1 WHERE id = $1 RETURNING {_COLUMNS}",
            account_id,
        )
        return _found(row)

    async def listing(self, merchant_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM payout_accounts WHERE merchant_id = $1 "  # noqa: S608
            "AND deleted_at IS NULL ORDER BY currency, created_at DESC, id DESC",
            merchant_id,
        )
        return [dict(r) for r in rows]


def _found(row: asyncpg.Record | None) -> dict[str, Any]:
    assert row is not None  # written in this transaction, under the merchant's lock
    return dict(row)
