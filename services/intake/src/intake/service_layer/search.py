"""Searching a merchant's payments: filters, newest first, opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from intake.adapters.payment_search import PageKey, PaymentFilters, PaymentSearch
from intake.domain.queries import BadCursor, PaymentFilterQuery
from intake.service_layer.views import payment_view

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def utc_instant(value: datetime) -> datetime:
    """The instant in UTC. One at the very edge of the calendar (year 1 or 9999 with an
    offset) has no UTC form; it is clamped, which matches the same payments."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return EARLIEST if value.year < 5000 else LATEST


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc_instant(value)


def filters_from(query: PaymentFilterQuery) -> PaymentFilters:
    return PaymentFilters(
        statuses=tuple(s.value for s in query.status),
        created_gte=_utc(query.created_gte),
        created_lt=_utc(query.created_lt),
        amount_gte=query.amount_gte,
        amount_lte=query.amount_lte,
        currency=query.currency,
        order_id=query.order_id,
        card_last4=query.card_last4,
        card_fingerprint=query.card_fingerprint,
    )


def encode_cursor(row: Mapping[str, Any] | Any) -> str:
    """The sort key of the page's last row. Opaque to merchants: only this module reads it."""
    text = f"{row['created_at'].isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> PageKey:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, payment_id = text.partition("|")
        key = (datetime.fromisoformat(created), uuid.UUID(payment_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor(cursor) from None
    if key[0].tzinfo is None:
        raise BadCursor(cursor)
    return key


async def search_payments(
    pool: asyncpg.Pool,
    merchant_id: str,
    filters: PaymentFilters,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    after = decode_cursor(cursor) if cursor else None
    rows = await PaymentSearch(pool).page(merchant_id, filters, limit + 1, after)
    page, has_more = rows[:limit], len(rows) > limit
    return {
        "object": "list",
        "data": [payment_view(row, []) for row in page],
        "has_more": has_more,
        "next_cursor": encode_cursor(page[-1]) if has_more else None,
    }
