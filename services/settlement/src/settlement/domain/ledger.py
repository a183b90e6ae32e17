"""Double-entry ledger rules. Pure: no I/O.

Accounts: the acquirer's clearing account (what card schemes owe us for captures and what we
owe them back for refunds), the platform's fee revenue, and one payable per merchant.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from sanalpos_common.fees import FeePlan

CLEARING = "acquirer:clearing"
FEE_REVENUE = "platform:fee_revenue"
# --- multi-currency (issue 13, fx) ---
FX_CLEARING = "fx:clearing"
"""Where a converted amount leaves one currency and enters another: balanced per currency."""
FX_MARKUP_REVENUE = "platform:fx_markup"


def merchant_payable(merchant_id: str) -> str:
    return f"merchant:{merchant_id}:payable"


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"

    def opposite(self) -> Direction:
        return Direction.CREDIT if self is Direction.DEBIT else Direction.DEBIT


class Kind(StrEnum):
    CAPTURE = "capture"
    REVERSAL = "reversal"
    """A capture cancelled ("iptal") before its batch closed: the sale leaves the batch."""
    REFUND = "refund"
    PAYOUT = "payout"
    """A payout to the merchant's bank (its `payment_id` column holds the payout id)."""
    PAYOUT_PAID = "payout_paid"
    PAYOUT_RETURNED = "payout_returned"
    # Disputes (domain/disputes.py; `payment_id` column holds the dispute id).
    DISPUTE_HOLD = "dispute_hold"
    DISPUTE_RELEASE = "dispute_release"
    DISPUTE_LOSS = "dispute_loss"
    DISPUTE_FEE = "dispute_fee"
    # --- multi-currency (issue 13, fx) ---
    FX_CONVERSION = "fx_conversion"
    """A captured payment's net moved into the merchant's settlement currency at its rate."""
    FX_MARKUP = "fx_markup"
    """The merchant's FX markup on a conversion, on its own line."""


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
    kind: Kind
    entries: tuple[Entry, ...]

    @property
    def currency(self) -> str:
        return self.entries[0].currency

    @property
    def fee(self) -> int:
        return sum(e.amount for e in self.entries if e.account == FEE_REVENUE)

    @property
    def gross(self) -> int:
        return sum(e.amount for e in self.entries if e.account == CLEARING)


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


def _transaction(
    id_: uuid.UUID, payment_id: uuid.UUID, merchant_id: str, kind: Kind, entries: list[Entry]
) -> LedgerTransaction:
    transaction = LedgerTransaction(
        id=id_,
        payment_id=payment_id,
        merchant_id=merchant_id,
        kind=kind,
        entries=tuple(e for e in entries if e.amount > 0),
    )
    assert_balanced(transaction.entries)
    return transaction


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
    return _transaction(
        uuid.uuid5(payment_id, Kind.CAPTURE),
        payment_id,
        merchant_id,
        Kind.CAPTURE,
        [
            Entry(CLEARING, Direction.DEBIT, amount, currency),
            Entry(merchant_payable(merchant_id), Direction.CREDIT, amount - fee, currency),
            Entry(FEE_REVENUE, Direction.CREDIT, fee, currency),
        ],
    )


def reversal_transaction(capture: LedgerTransaction) -> LedgerTransaction:
    """Every line of the capture mirrored, fee included: as if the sale never happened."""
    if capture.kind is not Kind.CAPTURE:
        raise ValueError("only a capture can be reversed")
    return _transaction(
        uuid.uuid5(capture.payment_id, Kind.REVERSAL),
        capture.payment_id,
        capture.merchant_id,
        Kind.REVERSAL,
        [Entry(e.account, e.direction.opposite(), e.amount, e.currency) for e in capture.entries],
    )


def refund_transaction(
    refund_id: uuid.UUID, payment_id: uuid.UUID, merchant_id: str, amount: int, currency: str
) -> LedgerTransaction:
    """The merchant pays the whole refund back; the commission on the sale is kept (the usual
    rule of Turkish acquirers for "iade", unlike a same-day "iptal")."""
    return _transaction(
        uuid.uuid5(refund_id, Kind.REFUND),
        payment_id,
        merchant_id,
        Kind.REFUND,
        [
            Entry(merchant_payable(merchant_id), Direction.DEBIT, amount, currency),
            Entry(CLEARING, Direction.CREDIT, amount, currency),
        ],
    )
