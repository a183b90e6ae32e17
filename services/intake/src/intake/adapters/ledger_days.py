"""Intake's copy of settlement's ledger days (settlement.ledger-day.v1), newest version wins."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from sanalpos_common.db import Connection
from sanalpos_common.schemas.events import LedgerDaySummarized

FIGURES = (
    "opening_balance",
    "sales",
    "refunds",
    "fees",
    "fx",
    "disputes",
    "payouts",
    "other",
    "closing_balance",
    "capture_count",
    "reversal_count",
    "refund_count",
    "payout_count",
)
_COLUMNS = ("merchant_id", "currency", "day", "time_zone", *FIGURES, "version", "computed_at")


class LedgerDays:
    def __init__(self, db: Connection | asyncpg.Pool) -> None:
        self.db = db

    async def apply(self, day: LedgerDaySummarized) -> bool:
        """False when what we hold is the same or a newer version (a redelivery)."""
        values = day.model_dump()
        placeholders = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[3:])
        applied = await self.db.fetchval(
            f"INSERT INTO ledger_days ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "  # noqa: S608
            f"ON CONFLICT (merchant_id, currency, day) DO UPDATE SET {updates} "
            "WHERE ledger_days.version < EXCLUDED.version RETURNING 1",
            *(values[c] for c in _COLUMNS),
        )
        return applied is not None

    async def month(self, merchant_id: str, first: date, after_last: date) -> list[dict[str, Any]]:
        """The days in [first, after_last), and per currency the last day before `first`
        (its closing is the month's opening)."""
        rows = await self.db.fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM ledger_days "  # noqa: S608 - fixed names
            "WHERE merchant_id = $1 AND day >= $2 AND day < $3 "
            f"UNION ALL (SELECT DISTINCT ON (currency) {', '.join(_COLUMNS)} FROM ledger_days "
            "WHERE merchant_id = $1 AND day < $2 ORDER BY currency, day DESC) "
            "ORDER BY currency, day",
            merchant_id,
            first,
            after_last,
        )
        return [{**dict(r), "currency": r["currency"].strip()} for r in rows]
