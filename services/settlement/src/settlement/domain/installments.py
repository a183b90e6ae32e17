"""The `per_installment` payout plan: a sale in N installments is paid to the merchant in N
parts, the k-th at the batch date + k calendar months (the same day of the month, or the
month's last day when it is shorter), moved to the next business day. Pure.

The parts are integer minor units and add up exactly to the sale's net (captured amount less
its fee): each is net // N, and the **first part takes the remainder** (net - N * (net // N)),
so the merchant is never paid more than is due at any point and a part never differs from
another by more than N - 1 minor units. Everything else in the batch (refunds, voids after the
batch, netted as one amount) is due at the batch's own value date (T+N business days), so
a refund is netted against the next parts paid and never pays out money the merchant lacks.
"""

from __future__ import annotations

import calendar as month_calendar
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from settlement.domain.value_dates import BusinessCalendar

PER_INSTALLMENT = "per_installment"
BATCH = "batch"
PAYOUT_PLANS = (BATCH, PER_INSTALLMENT)


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    last = month_calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def split(net: int, parts: int) -> list[int]:
    """`parts` integer amounts adding up to `net`; the first takes the remainder."""
    if parts < 1:
        raise ValueError("at least one part")
    if net < 0:
        raise ValueError("a sale's net is not negative")
    base = net // parts
    return [net - base * (parts - 1), *([base] * (parts - 1))]


@dataclass(frozen=True)
class ScheduledPart:
    payment_id: uuid.UUID | None
    """None: the rest of the batch (refunds, reversals), due at the batch's value date."""
    part: int
    parts: int
    value_date: date
    amount: int


def installment_parts(
    payment_id: uuid.UUID,
    net: int,
    installments: int,
    batch_date: date,
    calendar: BusinessCalendar,
) -> list[ScheduledPart]:
    """The sale's parts (zero amounts left out: a net smaller than N minor units)."""
    return [
        ScheduledPart(
            payment_id,
            k,
            installments,
            calendar.add_business_days(add_months(batch_date, k), 0),
            amount,
        )
        for k, amount in enumerate(split(net, installments), start=1)
        if amount
    ]


@dataclass(frozen=True)
class SettledSale:
    payment_id: uuid.UUID
    net: int
    installments: int


def batch_schedule(
    batch_date: date,
    batch_value_date: date,
    batch_net: int,
    sales: Sequence[SettledSale],
    calendar: BusinessCalendar,
) -> list[ScheduledPart]:
    """A closed batch's schedule; its amounts add up to `batch_net` exactly."""
    parts = [
        part
        for sale in sales
        for part in installment_parts(
            sale.payment_id, sale.net, sale.installments, batch_date, calendar
        )
    ]
    rest = batch_net - sum(p.amount for p in parts)
    if rest:
        parts.append(ScheduledPart(None, 1, 1, batch_value_date, rest))
    return parts
