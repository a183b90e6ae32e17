"""CSV export of a merchant's payments, streamed page by page: memory stays flat whatever the
number of rows. Card data: brand and masked number only.

An export is as slow as the merchant's link, so it must not hold what payments need while it
streams: each page is read by keyset (created_at, id) in its own short query on the exports'
own small pool, and no connection is held while a page is written to the network; and at
most `ExportSlots.limit` exports run at once (over it: 503 with Retry-After)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from intake.adapters.payment_search import PageKey, PaymentFilters, PaymentSearch
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


class ExportSlots:
    """How many exports may stream at once. Taken without waiting: a merchant over the limit
    is told to come back (Retry-After), not queued behind slow readers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def take(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        self.in_use = max(0, self.in_use - 1)


@dataclass(frozen=True)
class Exports:
    """What exports run on: their own pool (apart from the one payments use) and slots."""

    pool: asyncpg.Pool
    slots: ExportSlots
    retry_after_s: int = 5


async def export_csv(
    pool: asyncpg.Pool, merchant_id: str, filters: PaymentFilters, chunk_rows: int = CHUNK_ROWS
) -> AsyncIterator[str]:
    """The header, then one chunk per page of `chunk_rows` rows, newest first. Each page is
    its own query (a connection is borrowed only while it runs); the next page starts after
    the last row's (created_at, id), so payments created during the export (newer than its
    first page) do not shift it, while a status may be read as it is when its page is read."""
    yield csv_text([HEADER])
    search = PaymentSearch(pool)
    after: PageKey | None = None
    while True:
        rows = await search.export_page(merchant_id, filters, chunk_rows, after)
        if rows:
            yield csv_text(csv_row(row) for row in rows)
        if len(rows) < chunk_rows:
            return
        after = (rows[-1]["created_at"], rows[-1]["id"])
