"""How fast the merchant's money reached its bank: per currency, payouts paid, in transit and
returned, and the days from capture (the batch's business date) to the payout's value date.
Pure.

Timing counts the batches a paid or in-transit payout carries with a positive net (a negative
line is refunds netted in, not money paid out); a returned payout's batches are paid by a later
payout, whose value date is what counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


@dataclass(frozen=True)
class PayoutRow:
    currency: str
    status: str
    amount: int
    value_date: date
    lines: Sequence[Mapping[str, Any]]
    """Each with `batch_date` (a date or ISO text) and `amount`."""


def _date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def payout_timing(rows: Iterable[PayoutRow]) -> list[dict[str, Any]]:
    per: dict[str, dict[str, Any]] = {}
    days: dict[str, list[int]] = {}
    for row in rows:
        into = per.setdefault(
            row.currency,
            {
                "currency": row.currency,
                **{
                    f"{s}_{k}": 0
                    for s in ("paid", "in_transit", "returned")
                    for k in ("count", "amount")
                },
            },
        )
        if row.status not in {"paid", "in_transit", "returned"}:
            continue
        into[f"{row.status}_count"] += 1
        into[f"{row.status}_amount"] += row.amount
        if row.status == "returned":
            continue
        for line in row.lines:
            if int(line["amount"]) > 0:
                wait = (row.value_date - _date(line["batch_date"])).days
                days.setdefault(row.currency, []).append(wait)
    out = []
    for currency in sorted(per):
        waited = days.get(currency, [])
        average = None
        if waited:
            exact = Decimal(sum(waited)) / Decimal(len(waited))
            average = str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        out.append(
            {
                **per[currency],
                "batches_paid": len(waited),
                "average_days_to_payout": average,
                "max_days_to_payout": max(waited) if waited else None,
            }
        )
    return out
