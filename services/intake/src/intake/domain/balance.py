"""A merchant's balance per currency from its closed batches. Pure.

Pending: batches whose value date is still ahead. Available: reached their value date. Payouts
and disputes are not executed yet, so nothing is paid out or held; the fields exist so that
clients need not change when they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ClosedBatch:
    currency: str
    value_date: date
    net_amount: int


@dataclass(frozen=True)
class CurrencyBalance:
    currency: str
    pending: int = 0
    available: int = 0
    paid_out: int = 0
    held: int = 0
    next_value_date: date | None = None
    next_value_amount: int = 0


def balances(batches: Iterable[ClosedBatch], today: date) -> list[CurrencyBalance]:
    """One entry per currency, alphabetical; amounts in minor units (net may be negative)."""
    pending: dict[str, int] = {}
    available: dict[str, int] = {}
    upcoming: dict[str, dict[date, int]] = {}
    for batch in batches:
        pending.setdefault(batch.currency, 0)
        available.setdefault(batch.currency, 0)
        if batch.value_date > today:
            pending[batch.currency] += batch.net_amount
            by_day = upcoming.setdefault(batch.currency, {})
            by_day[batch.value_date] = by_day.get(batch.value_date, 0) + batch.net_amount
        else:
            available[batch.currency] += batch.net_amount
    result = []
    for currency in sorted(pending):
        days = upcoming.get(currency, {})
        first = min(days) if days else None
        result.append(
            CurrencyBalance(
                currency=currency,
                pending=pending[currency],
                available=available[currency],
                next_value_date=first,
                next_value_amount=days[first] if first is not None else 0,
            )
        )
    return result
