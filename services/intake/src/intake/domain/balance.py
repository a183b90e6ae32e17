"""A merchant's balance per currency from its closed batches and payouts. Pure.

Pending: batches not in a payout whose value date is still ahead. Available: batches not in a
payout that reached their value date (negative when refunds exceeded sales: netted against the
next payouts). In transit: payouts sent to the bank, not yet confirmed. Paid out: payouts the
bank confirmed. A returned payout's batches are in no payout again, so back in available.
Held: what open disputes hold from the merchant. A dispute's moves of the payable (the hold,
its release, the fee of a lost one) are booked in the merchant's open batch; until that batch
closes they count in pending (the closed batch's net includes them afterwards, and its value
date is ahead), so pending + available + held stays what the merchant is owed.
A batch of the `per_installment` payout plan counts part by part: each unpaid part pending until its own value date (`unpaid_parts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    in_transit: int = 0
    held: int = 0
    next_value_date: date | None = None
    next_value_amount: int = 0


@dataclass(frozen=True)
class PayoutTotal:
    currency: str
    status: str
    """in_transit or paid (returned payouts count nowhere)"""
    amount: int


def unpaid_parts(parts: list[tuple[date, int]], paid: int) -> list[tuple[date, int]]:
    """An installment batch's parts (by value date) not yet paid, when payouts have paid
    `paid` of it: each payout pays every part due by its date, so what was paid is a run of
    the earliest parts. Should it not be (a part paid in pieces), the earliest remaining part
    carries the difference."""
    ordered = sorted(parts)
    total = 0
    for k in range(len(ordered) + 1):
        if total == paid:
            return ordered[k:]
        if k < len(ordered):
            total += ordered[k][1]
    rest = sum(a for _, a in ordered) - paid
    return [(ordered[-1][0], rest)] if ordered and rest else []


def balances(
    batches: Iterable[ClosedBatch],
    today: date,
    payouts: Iterable[PayoutTotal] = (),
    held: Mapping[str, int] | None = None,
    unbatched: Mapping[str, int] | None = None,
) -> list[CurrencyBalance]:
    """One entry per currency, alphabetical; amounts in minor units (net may be negative).
    `batches`: the closed batches in no (unreturned) payout; `held`: held by open disputes
    per currency; `unbatched`: dispute moves of the payable in batches not closed yet."""
    held = held or {}
    unbatched = unbatched or {}
    pending: dict[str, int] = {}
    available: dict[str, int] = {}
    upcoming: dict[str, dict[date, int]] = {}
    paid: dict[str, int] = {}
    in_transit: dict[str, int] = {}
    for payout in payouts:
        pending.setdefault(payout.currency, 0)
        available.setdefault(payout.currency, 0)
        into = paid if payout.status == "paid" else in_transit
        into[payout.currency] = into.get(payout.currency, 0) + payout.amount
    for batch in batches:
        pending.setdefault(batch.currency, 0)
        available.setdefault(batch.currency, 0)
        if batch.value_date > today:
            pending[batch.currency] += batch.net_amount
            by_day = upcoming.setdefault(batch.currency, {})
            by_day[batch.value_date] = by_day.get(batch.value_date, 0) + batch.net_amount
        else:
            available[batch.currency] += batch.net_amount
    for currency, amount in unbatched.items():
        pending[currency] = pending.get(currency, 0) + amount
        available.setdefault(currency, 0)
    for currency in held:
        pending.setdefault(currency, 0)
        available.setdefault(currency, 0)
    result = []
    for currency in sorted(pending):
        days = upcoming.get(currency, {})
        first = min(days) if days else None
        result.append(
            CurrencyBalance(
                currency=currency,
                pending=pending[currency],
                available=available[currency],
                paid_out=paid.get(currency, 0),
                in_transit=in_transit.get(currency, 0),
                held=held.get(currency, 0),
                next_value_date=first,
                next_value_amount=days[first] if first is not None else 0,
            )
        )
    return result
