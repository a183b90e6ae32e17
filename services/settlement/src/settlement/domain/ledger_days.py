"""Ledger days: what a merchant's payable account did on one posting day, by statement line.
Pure: no I/O.

Each ledger transaction's effect on the merchant's payable (credits add, debits take away) goes
to one statement line by its kind. Captures and reversals are split in two: the fee-revenue
part goes to `fees` and the rest to `sales`, so sales read gross and fees read as what the
platform kept. Lines always add up to the payable's movement, to the minor unit, whatever the
kind: a kind this table does not know yet lands in `other` rather than disappearing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from settlement.domain.ledger import (
    FEE_REVENUE,
    Direction,
    Entry,
    LedgerTransaction,
    merchant_payable,
)


class Line(StrEnum):
    SALES = "sales"
    REFUNDS = "refunds"
    FEES = "fees"
    FX = "fx"
    DISPUTES = "disputes"
    PAYOUTS = "payouts"
    OTHER = "other"


# By kind name, not settlement.domain.ledger.Kind, so that the kinds other parts of issue 13
# add (FX and disputes) map the moment they exist.
LINE_OF_KIND: Mapping[str, Line] = {
    "capture": Line.SALES,
    "reversal": Line.SALES,
    "refund": Line.REFUNDS,
    "payout": Line.PAYOUTS,
    "payout_returned": Line.PAYOUTS,
    "payout_paid": Line.PAYOUTS,  # in transit -> cleared: never touches the payable
    "fx_conversion": Line.FX,
    "fx_markup": Line.FX,
    "dispute_hold": Line.DISPUTES,
    "dispute_release": Line.DISPUTES,
    "dispute_loss": Line.DISPUTES,
    "dispute_fee": Line.DISPUTES,
}
FEE_SPLIT_KINDS = frozenset({"capture", "reversal"})
COUNTED_KINDS = ("capture", "reversal", "refund", "payout")


def line_of(kind: str) -> Line:
    return LINE_OF_KIND.get(kind, Line.OTHER)


@dataclass(frozen=True)
class KindTotal:
    """The postings of one kind in one currency (on one day, for one merchant), summed:
    `payable` and `fee_revenue` signed credit-positive, `count` the transactions that
    touched the payable."""

    kind: str
    currency: str
    payable: int
    fee_revenue: int = 0
    count: int = 0


def _signed(direction: Direction, amount: int) -> int:
    return amount if direction is Direction.CREDIT else -amount


def kind_totals(transaction: LedgerTransaction) -> list[KindTotal]:
    """One transaction's effect per currency (what the SQL aggregation computes in bulk)."""
    return entry_totals(transaction.kind.value, transaction.merchant_id, transaction.entries)


def entry_totals(kind: str, merchant_id: str, entries: Iterable[Entry]) -> list[KindTotal]:
    """The same from a kind's name and entries (a kind the ledger module may not have yet)."""
    payable = merchant_payable(merchant_id)
    moved: dict[str, int] = defaultdict(int)
    fees: dict[str, int] = defaultdict(int)
    touched: set[str] = set()
    for entry in entries:
        if entry.account == payable:
            moved[entry.currency] += _signed(entry.direction, entry.amount)
            touched.add(entry.currency)
        elif entry.account == FEE_REVENUE:
            fees[entry.currency] += _signed(entry.direction, entry.amount)
    return [KindTotal(kind, c, moved[c], fees[c], 1) for c in sorted(touched)]


def split(total: KindTotal) -> dict[Line, int]:
    """Statement lines of one kind's total; they add up to `total.payable` exactly."""
    line = line_of(total.kind)
    if total.kind in FEE_SPLIT_KINDS and total.fee_revenue:
        # A capture credits the payable gross - fee; the platform's fee revenue took the fee.
        return {line: total.payable + total.fee_revenue, Line.FEES: -total.fee_revenue}
    return {line: total.payable}


@dataclass(frozen=True)
class DaySummary:
    currency: str
    day: date
    opening: int
    lines: Mapping[Line, int]
    closing: int
    counts: Mapping[str, int] = field(default_factory=dict)
    """Transactions per counted kind (captures, reversals, refunds, payouts)."""

    def line(self, line: Line) -> int:
        return self.lines.get(line, 0)


def summarize_days(
    openings: Mapping[str, int], totals: Iterable[tuple[date, KindTotal]]
) -> list[DaySummary]:
    """Days in order per currency, each opening on the previous one's closing; the first on
    `openings` (the payable before the first day, 0 for a currency not in it)."""
    by_day: dict[tuple[str, date], dict[Line, int]] = defaultdict(lambda: defaultdict(int))
    counts: dict[tuple[str, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, total in totals:
        key = (total.currency, day)
        for line, amount in split(total).items():
            by_day[key][line] += amount
        if total.kind in COUNTED_KINDS:
            counts[key][total.kind] += total.count
    balance = dict(openings)
    summaries = []
    for currency, day in sorted(by_day):
        lines = {line: by_day[currency, day].get(line, 0) for line in Line}
        opening = balance.get(currency, 0)
        closing = opening + sum(lines.values())
        balance[currency] = closing
        summaries.append(
            DaySummary(currency, day, opening, lines, closing, dict(counts[currency, day]))
        )
    return summaries


def changed(summary: DaySummary, stored: Mapping[str, int] | None) -> bool:
    """Whether a stored day (as figures by name) differs from the summary just computed."""
    if stored is None:
        return True
    return figures(summary) != {k: stored[k] for k in figures(summary)}


def figures(summary: DaySummary) -> dict[str, int]:
    """The day's numbers by column name (the stored row and the event use these names)."""
    return {
        "opening_balance": summary.opening,
        **{line.value: summary.line(line) for line in Line},
        "closing_balance": summary.closing,
        **{f"{kind}_count": summary.counts.get(kind, 0) for kind in COUNTED_KINDS},
    }
