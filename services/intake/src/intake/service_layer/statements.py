"""The merchant's monthly statement (JSON, CSV, PDF), from settlement's ledger days."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from intake.adapters.ledger_days import LedgerDays
from intake.adapters.statement_pdf import render_pdf
from intake.domain.statements import COUNTS, LINES, CurrencyStatement, Day, Month, build_statement
from intake.service_layer.payouts import major
from sanalpos_common.db import UnitOfWork
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import LedgerDaySummarized

CSV_COLUMNS = ("currency", "date", "opening_balance", *LINES, "closing_balance")


async def on_ledger_day(uow: UnitOfWork, envelope: Envelope[LedgerDaySummarized]) -> None:
    await LedgerDays(uow.conn).apply(envelope.payload)


async def load(pool: asyncpg.Pool, merchant_id: str, month: Month) -> dict[str, Any]:
    async with pool.acquire() as conn:
        merchant = await conn.fetchrow(
            "SELECT name, time_zone FROM merchants WHERE id = $1", merchant_id
        )
        rows = await LedgerDays(conn).month(merchant_id, month.first, month.after_last)
    assert merchant is not None  # the caller authenticated as this merchant
    computed = [r["computed_at"] for r in rows if month.first <= r["day"] < month.after_last]
    return {
        "month": month,
        "merchant": (merchant_id, merchant["name"]),
        "time_zone": merchant["time_zone"],
        "statements": build_statement(month, rows),
        "as_of": max(computed) if computed else None,
    }


def _day_view(day: Day) -> dict[str, Any]:
    return {
        "date": day.day.isoformat(),
        "opening_balance": day.opening,
        **dict(day.lines),
        "closing_balance": day.closing,
        "counts": _counts(day.counts),
    }


def _counts(counts: Mapping[str, int]) -> dict[str, int]:
    return {name.removesuffix("_count") + "s": counts.get(name, 0) for name in COUNTS}


def _currency_view(statement: CurrencyStatement) -> dict[str, Any]:
    return {
        "currency": statement.currency,
        "opening_balance": statement.opening,
        **dict(statement.lines),
        "closing_balance": statement.closing,
        "counts": {name.removesuffix("_count") + "s": statement.counts[name] for name in COUNTS},
        "reconciled": statement.reconciled,
        "days": [_day_view(d) for d in statement.days],
    }


def statement_json(loaded: dict[str, Any]) -> dict[str, Any]:
    month: Month = loaded["month"]
    as_of: datetime | None = loaded["as_of"]
    return {
        "object": "statement",
        "month": str(month),
        "from": month.first.isoformat(),
        "to": month.after_last.isoformat(),
        "time_zone": loaded["time_zone"],
        "as_of": None if as_of is None else as_of.isoformat(),
        "currencies": [_currency_view(s) for s in loaded["statements"]],
    }


def statement_csv(loaded: dict[str, Any]) -> str:
    """RFC 4180; amounts exact in the currency's major unit. One row per posting day, then
    the month's row (date = the month) with its opening, lines and closing."""
    month: Month = loaded["month"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for statement in loaded["statements"]:
        cur = statement.currency
        for day in statement.days:
            writer.writerow(
                [
                    cur,
                    day.day.isoformat(),
                    major(day.opening, cur),
                    *(major(day.lines[n], cur) for n in LINES),
                    major(day.closing, cur),
                ]
            )
        writer.writerow(
            [
                cur,
                str(month),
                major(statement.opening, cur),
                *(major(statement.lines[n], cur) for n in LINES),
                major(statement.closing, cur),
            ]
        )
    return out.getvalue()


def statement_pdf(loaded: dict[str, Any], now: datetime | None = None) -> bytes:
    return render_pdf(
        loaded["month"],
        loaded["merchant"],
        loaded["time_zone"],
        loaded["statements"],
        (now or datetime.now(UTC)).astimezone(UTC),
    )
