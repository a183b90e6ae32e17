"""The merchant's payouts, read from settlement's payout-updated events: list, one with its
lines, and a CSV export."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import asyncpg

from intake.adapters.payouts import PayoutReadModel
from intake.service_layer.problems import Refused, not_found
from sanalpos_common.db import UnitOfWork
from sanalpos_common.money import currency_exponent
from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import PayoutUpdated

CSV_COLUMNS = (
    "payout_id",
    "status",
    "currency",
    "amount_minor",
    "amount",
    "value_date",
    "iban_last4",
    "batches",
    "reason",
    "created_at",
    "updated_at",
)
MAX_EXPORT = 10_000


async def on_payout_updated(uow: UnitOfWork, envelope: Envelope[PayoutUpdated]) -> None:
    await PayoutReadModel(uow.conn).apply(envelope.payload)


def _lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    raw = row["lines"]
    return list(json.loads(raw) if isinstance(raw, str) else raw)


def payout_view(row: dict[str, Any], with_lines: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(row["payout_id"]),
        "object": "payout",
        "status": row["status"],
        "currency": row["currency"].strip(),
        "amount": row["amount"],
        "value_date": row["value_date"].isoformat(),
        "payout_account_id": str(row["account_id"]),
        "iban_last4": row["iban_last4"],
        "reason": row["reason"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
    if with_lines:
        view["lines"] = _lines(row)
    return view


async def list_payouts(
    pool: asyncpg.Pool, merchant_id: str, limit: int, after: uuid.UUID | None
) -> dict[str, Any]:
    rows = await PayoutReadModel(pool).newest(merchant_id, limit + 1, after)
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "object": "list",
        "data": [payout_view(r, with_lines=False) for r in page],
        "has_more": more,
        "next_cursor": str(page[-1]["payout_id"]) if more else None,
    }


async def read_payout(pool: asyncpg.Pool, merchant_id: str, payout_id: uuid.UUID) -> dict[str, Any]:
    row = await PayoutReadModel(pool).get(merchant_id, payout_id)
    if row is None:
        raise Refused(not_found("payout", str(payout_id)))
    return payout_view(row)


def major(amount: int, currency: str) -> str:
    exponent = currency_exponent(currency)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    return f"{sign}{units}.{minor:0{exponent}d}" if exponent else f"{sign}{units}"


async def payouts_csv(pool: asyncpg.Pool, merchant_id: str) -> str:
    """Every payout, newest first (up to MAX_EXPORT), RFC 4180."""
    rows = await PayoutReadModel(pool).newest(merchant_id, MAX_EXPORT, None)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        currency = row["currency"].strip()
        writer.writerow(
            [
                row["payout_id"],
                row["status"],
                currency,
                row["amount"],
                major(row["amount"], currency),
                row["value_date"].isoformat(),
                row["iban_last4"],
                " ".join(line["batch_id"] for line in _lines(row)),
                row["reason"] or "",
                row["created_at"].isoformat(),
                row["updated_at"].isoformat(),
            ]
        )
    return out.getvalue()
