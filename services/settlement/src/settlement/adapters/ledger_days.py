"""The ledger aggregated per merchant, currency, posting day and kind, and the days as last
announced (ledger_days)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sanalpos_common.db import Connection
from settlement.domain.ledger import FEE_REVENUE, merchant_payable
from settlement.domain.ledger_days import DaySummary, KindTotal, figures

_SIGNED = "CASE WHEN e.direction = 'credit' THEN e.amount ELSE -e.amount END"


_KIND_TOTALS = (
    "SELECT (t.created_at AT TIME ZONE $4)::date AS day, e.currency, t.kind, "  # noqa: S608
    f"sum({_SIGNED}) FILTER (WHERE e.account = $2) AS payable, "
    f"coalesce(sum({_SIGNED}) FILTER (WHERE e.account = $3), 0) AS fee_revenue, "
    "count(DISTINCT t.id) FILTER (WHERE e.account = $2) AS count "
    "FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id "
    "WHERE t.merchant_id = $1 AND t.created_at >= $5 AND e.account IN ($2, $3) "
    "GROUP BY 1, 2, 3"
)


class LedgerDayRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def lock_merchant(self, merchant_id: str) -> None:
        """One recomputation of a merchant at a time (the loop and an operator may race)."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('ledger-day:' || $1))", merchant_id
        )

    async def posted_since(self, since: datetime | None) -> dict[str, datetime]:
        """Merchants with postings made at or after `since` (all when None), and the first."""
        rows = await self.conn.fetch(
            "SELECT merchant_id, min(created_at) AS first FROM ledger_transactions "
            "WHERE $1::timestamptz IS NULL OR created_at >= $1 GROUP BY merchant_id",
            since,
        )
        return {r["merchant_id"]: r["first"] for r in rows}

    async def first_posting(self, merchant_id: str) -> datetime | None:
        first: datetime | None = await self.conn.fetchval(
            "SELECT min(created_at) FROM ledger_transactions WHERE merchant_id = $1", merchant_id
        )
        return first

    async def openings(self, merchant_id: str, before: datetime) -> dict[str, int]:
        """The merchant's payable per currency from every posting made before `before`."""
        rows = await self.conn.fetch(
            f"SELECT e.currency, sum({_SIGNED}) AS balance FROM ledger_entries e "  # noqa: S608
            "JOIN ledger_transactions t ON t.id = e.transaction_id "
            "WHERE e.account = $1 AND t.merchant_id = $2 AND t.created_at < $3 "
            "GROUP BY e.currency",
            merchant_payable(merchant_id),
            merchant_id,
            before,
        )
        return {r["currency"].strip(): int(r["balance"]) for r in rows}

    async def kind_totals(
        self, merchant_id: str, since: datetime, time_zone: str
    ) -> list[tuple[date, KindTotal]]:
        """Per local posting day, currency and kind: the payable's and the fee revenue's
        movement (credit-positive) and the transactions that touched the payable."""
        rows = await self.conn.fetch(
            _KIND_TOTALS,
            merchant_id,
            merchant_payable(merchant_id),
            FEE_REVENUE,
            time_zone,
            since,
        )
        return [
            (
                r["day"],
                KindTotal(
                    r["kind"],
                    r["currency"].strip(),
                    int(r["payable"]),
                    int(r["fee_revenue"]),
                    int(r["count"]),
                ),
            )
            for r in rows
            if r["count"]
        ]

    async def stored(self, merchant_id: str, from_day: date) -> dict[tuple[str, date], Any]:
        rows = await self.conn.fetch(
            "SELECT * FROM ledger_days WHERE merchant_id = $1 AND day >= $2",
            merchant_id,
            from_day,
        )
        return {(r["currency"].strip(), r["day"]): dict(r) for r in rows}

    async def save(
        self, merchant_id: str, summary: DaySummary, version: int, computed_at: datetime
    ) -> None:
        values = figures(summary)
        names = list(values)
        columns = ", ".join(names)
        params = ", ".join(f"${i}" for i in range(6, 6 + len(names)))
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in (*names, "version", "computed_at"))
        await self.conn.execute(
            f"INSERT INTO ledger_days (merchant_id, currency, day, version, computed_at, "  # noqa: S608
            f"{columns}) VALUES ($1, $2, $3, $4, $5, {params}) "
            f"ON CONFLICT (merchant_id, currency, day) DO UPDATE SET {updates}",
            merchant_id,
            summary.currency,
            summary.day,
            version,
            computed_at,
            *values.values(),
        )

    async def watermark(self) -> datetime | None:
        found: datetime | None = await self.conn.fetchval(
            "SELECT posted_since FROM ledger_day_watermark"
        )
        return found

    async def set_watermark(self, posted_since: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO ledger_day_watermark (posted_since) VALUES ($1) ON CONFLICT (singleton) "
            "DO UPDATE SET posted_since = greatest(ledger_day_watermark.posted_since, $1)",
            posted_since,
        )

    async def now(self) -> datetime:
        found: datetime = await self.conn.fetchval("SELECT now()")
        return found
