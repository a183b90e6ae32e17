"""Double-entry ledger rules. Pure: no I/O."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from sanalpos_common.money import apply_rate_bps

CLEARING = "acquirer:clearing"
FEE_REVENUE = "platform:fee_revenue"


def merchant_payable(merchant_id: str) -> str:
    return f"merchant:{merchant_id}:payable"


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


@dataclass(frozen=True)
class FeePlan:
    mdr_bps: int
    installment_bps: int

    def fee(self, amount: int, installments: int) -> int:
        rate = self.mdr_bps + self.installment_bps * (installments - 1)
        return apply_rate_bps(amount, rate)


@dataclass(frozen=True)
class Entry:
    account: str
    direction: Direction
    amount: int
    currency: str


@dataclass(frozen=True)
class LedgerTransaction:
    id: uuid.UUID
    payment_id: uuid.UUID
    merchant_id: str
    kind: str
    entries: tuple[Entry, ...]

    @property
    def fee(self) -> int:
        return sum(e.amount for e in self.entries if e.account == FEE_REVENUE)


class UnbalancedTransaction(ValueError):
    pass


def assert_balanced(entries: tuple[Entry, ...]) -> None:
    totals: dict[str, int] = defaultdict(int)
    for entry in entries:
        if entry.amount <= 0:
            raise UnbalancedTransaction("entry amounts must be positive")
        sign = 1 if entry.direction is Direction.DEBIT else -1
        totals[entry.currency] += sign * entry.amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise UnbalancedTransaction(f"debits and credits differ: {unbalanced}")


def capture_transaction(
    payment_id: uuid.UUID,
    merchant_id: str,
    amount: int,
    currency: str,
    installments: int,
    plan: FeePlan,
) -> LedgerTransaction:
    """The acquirer will receive `amount`; the merchant is owed it less the fee."""
    fee = min(plan.fee(amount, installments), amount)
    entries = [
        Entry(CLEARING, Direction.DEBIT, amount, currency),
        Entry(merchant_payable(merchant_id), Direction.CREDIT, amount - fee, currency),
    ]
    if fee:
        entries.append(Entry(FEE_REVENUE, Direction.CREDIT, fee, currency))
    entries = [e for e in entries if e.amount > 0]
    transaction = LedgerTransaction(
        id=uuid.uuid5(payment_id, "capture"),
        payment_id=payment_id,
        merchant_id=merchant_id,
        kind="capture",
        entries=tuple(entries),
    )
    assert_balanced(transaction.entries)
    return transaction
