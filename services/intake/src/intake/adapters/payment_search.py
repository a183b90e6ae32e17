"""Reading many payments of one merchant: filtered pages (keyset) for search and for exports,
and the aggregates behind the summary report."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from sanalpos_common.db import Connection


@dataclass(frozen=True)
class PaymentFilters:
    statuses: tuple[str, ...] = ()
    created_gte: datetime | None = None
    created_lt: datetime | None = None
    amount_gte: int | None = None
    amount_lte: int | None = None
    currency: str | None = None
    order_id: str | None = None
    card_last4: str | None = None
    card_fingerprint: str | None = None


_OPTIONAL_FILTERS: tuple[tuple[str, str], ...] = (
    ("created_gte", "p.created_at >= {}"),
    ("created_lt", "p.created_at < {}"),
    ("amount_gte", "p.amount >= {}"),
    ("amount_lte", "p.amount <= {}"),
    ("currency", "p.currency = {}"),
    ("order_id", "p.order_id = {}"),
    ("card_last4", "p.card_last4 = {}"),
    ("card_fingerprint", "p.card_fingerprint = {}"),
)
"""Each filter that narrows the search when it is set, and its condition ({} = its value)."""

PageKey = tuple[datetime, uuid.UUID]
"""(created_at, id) of the last row of the previous page."""


def where_clause(
    merchant_id: str, filters: PaymentFilters, after: PageKey | None = None
) -> tuple[str, list[Any]]:
    """The WHERE clause (with $n placeholders) and its arguments. Only values are bound;
    column names and operators come from this function, never from the request."""
    args: list[Any] = [merchant_id]
    conditions = ["p.merchant_id = $1"]

    def add(template: str, value: Any) -> None:
        args.append(value)
        conditions.append(template.format(f"${len(args)}"))

    if filters.statuses:
        add("p.status = ANY({}::text[])", list(filters.statuses))
    for field, condition in _OPTIONAL_FILTERS:
        value = getattr(filters, field)
        if value is not None:
            add(condition, value)
    if after is not None:
        args.extend(after)
        conditions.append(f"(p.created_at, p.id) < (${len(args) - 1}, ${len(args)})")
    return " AND ".join(conditions), args


NEWEST_FIRST = "ORDER BY p.created_at DESC, p.id DESC"

EXPORT_COLUMNS = (
    "id, created_at, updated_at, status, amount, currency, capture, installments, order_id, "
    "description, card_brand, card_bin, card_last4, response_code, auth_code, decline_reason, "
    "fee_amount, net_amount"
)


class PaymentSearch:
    def __init__(self, conn: Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def page(
        self, merchant_id: str, filters: PaymentFilters, limit: int, after: PageKey | None
    ) -> list[asyncpg.Record]:
        where, args = where_clause(merchant_id, filters, after)
        args.append(limit)
        return await self.conn.fetch(
            f"SELECT p.* FROM payments p WHERE {where} {NEWEST_FIRST} LIMIT ${len(args)}",  # noqa: S608 - built from fixed fragments
            *args,
        )

    async def export_page(
        self, merchant_id: str, filters: PaymentFilters, limit: int, after: PageKey | None
    ) -> list[asyncpg.Record]:
        """The next `limit` rows of an export (its columns only), newest first, after `after`."""
        where, args = where_clause(merchant_id, filters, after)
        args.append(limit)
        return await self.conn.fetch(
            f"SELECT {EXPORT_COLUMNS} FROM payments p WHERE {where} {NEWEST_FIRST} "  # noqa: S608 - built from fixed fragments
            f"LIMIT ${len(args)}",
            *args,
        )


# The report's group keys: the SQL for each is fixed here; the request only picks a name.
GROUP_KEYS = {
    "day": "to_char(p.created_at AT TIME ZONE $4, 'YYYY-MM-DD')",
    "currency": "p.currency::text",
    "status": "p.status",
    "installments": "p.installments::text",
}

_SUMMARY = """
SELECT {key} AS key, p.currency::text AS currency,
       count(*) AS payments,
       sum(p.amount) AS volume,
       count(*) FILTER (WHERE p.authorized AND NOT p.declined) AS approved_count,
       coalesce(sum(p.amount) FILTER (WHERE p.authorized AND NOT p.declined), 0)
           AS approved_volume,
       count(*) FILTER (WHERE p.declined) AS declined_count,
       count(*) FILTER (WHERE p.declined AND EXISTS (
           SELECT 1 FROM payment_events e
           WHERE e.payment_id = p.id AND e.type = 'payment.declined'
             AND e.details ->> 'declined_by' = 'fraud')) AS fraud_declined_count,
       coalesce(sum(p.captured_amount), 0) AS captured_volume,
       coalesce(sum(r.refund_count), 0) AS refund_count,
       coalesce(sum(r.refunded_amount), 0) AS refunded_amount,
       count(p.fee_amount) AS settled_count,
       coalesce(sum(p.fee_amount), 0) AS fee_amount,
       coalesce(sum(p.net_amount), 0) AS net_amount
FROM payments p
LEFT JOIN LATERAL (
    SELECT count(*) AS refund_count, sum(f.amount) AS refunded_amount FROM refunds f
    WHERE f.payment_id = p.id AND f.status = 'succeeded'
) r ON true
WHERE p.merchant_id = $1 AND p.created_at >= $2 AND p.created_at < $3
GROUP BY 1, 2 ORDER BY 1, 2
"""

_DECLINE_REASONS = """
SELECT {key} AS key, p.currency::text AS currency,
       coalesce(p.decline_reason, 'unknown') AS reason, count(*) AS count
FROM payments p
WHERE p.merchant_id = $1 AND p.created_at >= $2 AND p.created_at < $3 AND p.declined
GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC, 3
"""


# Net volume after fees and FX (issue 13), per currency paid out in: a converted payment counts
# in its settlement currency with what the merchant is paid for it, any other with its net.
_NET_AFTER_FEES_AND_FX = """
SELECT coalesce(e.details ->> 'settlement_currency', p.currency::text) AS currency,
       count(*) AS settled_count,
       count(*) FILTER (WHERE e.details ? 'settlement_currency') AS converted_count,
       sum(coalesce((e.details ->> 'settlement_net_amount')::bigint, p.net_amount)) AS net_amount,
       coalesce(sum((e.details ->> 'fx_markup_amount')::bigint), 0) AS fx_markup_amount
FROM payments p
JOIN LATERAL (
    SELECT details FROM payment_events
    WHERE payment_id = p.id AND type = 'payment.settled' ORDER BY occurred_at LIMIT 1
) e ON true
WHERE p.merchant_id = $1 AND p.created_at >= $2 AND p.created_at < $3
  AND p.net_amount IS NOT NULL
GROUP BY 1 ORDER BY 1
"""


class PaymentReports:
    def __init__(self, conn: Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def time_zone(self, merchant_id: str) -> str | None:
        return await self.conn.fetchval(
            "SELECT time_zone FROM merchants WHERE id = $1", merchant_id
        )

    async def net_after_fees_and_fx(
        self, merchant_id: str, start: datetime, end: datetime
    ) -> Sequence[asyncpg.Record]:
        return await self.conn.fetch(_NET_AFTER_FEES_AND_FX, merchant_id, start, end)

    async def summary(
        self, merchant_id: str, group_by: str, start: datetime, end: datetime, time_zone: str
    ) -> tuple[Sequence[asyncpg.Record], Sequence[asyncpg.Record]]:
        """(figures per key and currency, decline reasons per key and currency)."""
        key = GROUP_KEYS[group_by]
        args: list[Any] = [merchant_id, start, end]
        if group_by == "day":
            args.append(time_zone)
        figures = await self.conn.fetch(_SUMMARY.format(key=key), *args)
        reasons = await self.conn.fetch(_DECLINE_REASONS.format(key=key), *args)
        return figures, reasons
