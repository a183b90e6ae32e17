"""CSV export of a merchant's payments, streamed in chunks from a server-side cursor: memory
stays flat whatever the number of rows. Card data: brand and masked number only."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Mapping
from decimal import Decimal
from typing import Any

import asyncpg

from intake.adapters.payment_search import PaymentFilters, PaymentSearch
from sanalpos_common.money import UnknownCurrencyError, currency_exponent

HEADER = (
    "id",
    "created_at",
    "updated_at",
    "status",
    "amount_minor",
    "amount",
    "currency",
    "capture",
    "installments",
    "order_id",
    "description",
    "card_brand",
    "card_number",
    "response_code",
    "auth_code",
    "decline_reason",
    "fee_amount_minor",
    "net_amount_minor",
)
CHUNK_ROWS = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def masked_card(card_bin: str, last4: str) -> str:
    """First six and last four; the card's length is not stored, so the middle is a fixed
    run of stars rather than one per hidden digit."""
    return f"{card_bin[:6]}******{last4}"


def spreadsheet_safe(text: str | None) -> str:
    """Free text a spreadsheet would run as a formula gets a leading quote (CSV injection)."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def major_units(amount: int, currency: str) -> str:
    try:
        exponent = currency_exponent(currency)
    except UnknownCurrencyError:
        return ""
    return str(Decimal(amount).scaleb(-exponent)) if exponent else str(amount)


def csv_row(row: Mapping[str, Any] | Any) -> list[Any]:
    return [
        row["id"],
        row["created_at"].isoformat(),
        row["updated_at"].isoformat(),
        row["status"],
        row["amount"],
        major_units(row["amount"], row["currency"]),
        row["currency"],
        "true" if row["capture"] else "false",
        row["installments"],
        spreadsheet_safe(row["order_id"]),
        spreadsheet_safe(row["description"]),
        row["card_brand"],
        masked_card(row["card_bin"], row["card_last4"]),
        row["response_code"] or "",
        row["auth_code"] or "",
        spreadsheet_safe(row["decline_reason"]),
        "" if row["fee_amount"] is None else row["fee_amount"],
        "" if row["net_amount"] is None else row["net_amount"],
    ]


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def export_csv(
    pool: asyncpg.Pool, merchant_id: str, filters: PaymentFilters, chunk_rows: int = CHUNK_ROWS
) -> AsyncIterator[str]:
    """The header, then chunks of `chunk_rows` rows, newest first. One read-only snapshot, so
    payments created during a long export do not shift it."""
    yield csv_text([HEADER])
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        chunk: list[list[Any]] = []
        async for row in PaymentSearch(conn).stream(merchant_id, filters, prefetch=chunk_rows):
            chunk.append(csv_row(row))
            if len(chunk) >= chunk_rows:
                yield csv_text(chunk)
                chunk.clear()
        if chunk:
            yield csv_text(chunk)
