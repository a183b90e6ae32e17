"""The monthly statement from settlement's ledger days. Pure.

Per currency: the opening balance is the closing balance of the last posting day before the
month (0 when there is none), each line sums the month's days, and the closing balance is the
opening plus the lines. Settlement chains its days (each opens on the previous one's closing),
so when every day has arrived the closing equals the last day's, which is the merchant's
payable in the ledger; `reconciled` says so. A day still on its way breaks the chain and
`reconciled` is false until it comes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

LINES = ("sales", "refunds", "fees", "fx", "disputes", "payouts", "other")
COUNTS = ("capture_count", "reversal_count", "refund_count", "payout_count")
MONTH = re.compile(r"^((?:19|2\d)\d{2})-(0[1-9]|1[0-2])$")
"""yyyy-mm, years 1900 to 2999."""


class BadMonth(ValueError):
    pass


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        found = MONTH.match(text)
        if found is None:
            raise BadMonth(f"{text!r} is not a month as yyyy-mm (01 to 12, 1900 to 2999)")
        return cls(int(found.group(1)), int(found.group(2)))

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def after_last(self) -> date:
        if self.month == 12:
            return date(self.year + 1, 1, 1)
        return date(self.year, self.month + 1, 1)

    @property
    def days(self) -> int:
        return (self.after_last - self.first).days

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Day:
    day: date
    opening: int
    lines: Mapping[str, int]
    closing: int
    counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Day:
        return cls(
            row["day"],
            int(row["opening_balance"]),
            {name: int(row[name]) for name in LINES},
            int(row["closing_balance"]),
            {name: int(row[name]) for name in COUNTS},
        )


@dataclass(frozen=True)
class CurrencyStatement:
    currency: str
    opening: int
    lines: Mapping[str, int]
    closing: int
    counts: Mapping[str, int]
    days: tuple[Day, ...]
    reconciled: bool

    def daily(self, month: Month, line: str) -> list[int]:
        """One figure per calendar day of the month (0 on a day without postings)."""
        by_day = {d.day.day: d.lines[line] for d in self.days}
        return [by_day.get(n, 0) for n in range(1, month.days + 1)]


def build_statement(month: Month, rows: Iterable[Mapping[str, Any]]) -> list[CurrencyStatement]:
    """`rows`: the month's days and, per currency, the last day before it (any order)."""
    before: dict[str, Day] = {}
    inside: dict[str, list[Day]] = {}
    for row in rows:
        day = Day.of(row)
        if day.day >= month.after_last:
            continue
        if day.day < month.first:
            if row["currency"] not in before or before[row["currency"]].day < day.day:
                before[row["currency"]] = day
        else:
            inside.setdefault(row["currency"], []).append(day)
    statements = []
    for currency in sorted(set(before) | set(inside)):
        days = tuple(sorted(inside.get(currency, []), key=lambda d: d.day))
        opening = before[currency].closing if currency in before else 0
        lines = {name: sum(d.lines[name] for d in days) for name in LINES}
        counts = {name: sum(d.counts.get(name, 0) for d in days) for name in COUNTS}
        closing = opening + sum(lines.values())
        chained, balance = True, opening
        for day in days:
            chained = chained and day.opening == balance
            balance = day.closing
        statements.append(
            CurrencyStatement(
                currency, opening, lines, closing, counts, days, chained and closing == balance
            )
        )
    return statements
