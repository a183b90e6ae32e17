"""Checkout sessions (migration 0013) and the payments made in them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from sanalpos_common.db import Connection

COLUMNS = (
    "id, merchant_id, amount, currency, order_id, basket, capture, installments, locale, "
    "shopper_email, shopper_name, success_url, failure_url, csrf_token, max_attempts, "
    "expires_at, created_at"
)


class CheckoutSessionRepository:
    def __init__(self, db: Connection | asyncpg.Pool) -> None:
        self.db = db

    async def add(self, row: dict[str, Any]) -> None:
        values = {**row, "basket": json.dumps(row["basket"])}
        columns = ", ".join(values)
        params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        await self.db.execute(
            f"INSERT INTO checkout_sessions ({columns}) VALUES ({params})",  # noqa: S608
            *values.values(),
        )

    async def get(self, merchant_id: str, session_id: str) -> asyncpg.Record | None:
        return await self.db.fetchrow(
            f"SELECT {COLUMNS} FROM checkout_sessions "  # noqa: S608
            "WHERE merchant_id = $1 AND id = $2",
            merchant_id,
            session_id,
        )

    async def find(self, session_id: str, *, for_update: bool = False) -> asyncpg.Record | None:
        """The page's view: any merchant's session, by its unguessable id. `for_update`
        takes FOR NO KEY UPDATE: it excludes other submits, but not the key-share lock the
        payment's foreign key takes from another transaction while this one waits for it."""
        lock = " FOR NO KEY UPDATE" if for_update else ""
        return await self.db.fetchrow(
            f"SELECT {COLUMNS} FROM checkout_sessions WHERE id = $1{lock}",  # noqa: S608
            session_id,
        )

    async def page(
        self, merchant_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[asyncpg.Record]:
        """Newest first; `after` is the (created_at, id) of the last row already seen."""
        return list(
            await self.db.fetch(
                f"SELECT {COLUMNS} FROM checkout_sessions WHERE merchant_id = $1 "  # noqa: S608
                "AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4)) "
                "ORDER BY created_at DESC, id DESC LIMIT $2",
                merchant_id,
                limit,
                None if after is None else after[0],
                None if after is None else after[1],
            )
        )

    async def payments(self, session_ids: list[str]) -> list[asyncpg.Record]:
        """The sessions' payments, oldest first, with the decline's origin. `p.*` so that a
        column a later migration adds (next_action_url) is read where it exists."""
        return list(
            await self.db.fetch(
                "SELECT p.*, (SELECT e.details->>'declined_by' FROM payment_events e "
                "WHERE e.payment_id = p.id AND e.type LIKE 'payment.declined%' LIMIT 1) "
                "AS declined_by FROM payments p WHERE p.checkout_session_id = ANY($1::text[]) "
                "ORDER BY p.created_at, p.id",
                session_ids,
            )
        )
