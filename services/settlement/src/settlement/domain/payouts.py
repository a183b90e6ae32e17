"""Payouts: which due batches become one payout, and the netting rule. Pure.

For one merchant and currency on a run date, the *due* batches are the closed ones whose value
date has come and that no payout pays yet (a returned payout's batches are due again). Their
nets add up to what may be paid:

1. No default payout account for the currency: nothing is paid, the money stays available,
   and the hold is recorded as `no_payout_account`.
2. The sum is zero or negative (refunds larger than the sales of the due batches): nothing is
   paid and the batches stay due, so the negative batch nets against the next positive ones
   (`balance_not_positive`). A refund never pays out money the merchant does not have.
3. The sum exceeds the merchant's payable balance in the ledger (a refund booked since, in a
   batch not yet due, already took part of it): nothing is paid until that batch is due and
   nets in (`refunds_pending`; `disputes_held` when disputes hold money from the merchant:
   their holds left the payable in a batch not yet due, and held money is never paid out).
4. Otherwise one payout of the sum, with one line per due batch (negative lines included).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from settlement.domain.ledger import (
    Direction,
    Entry,
    Kind,
    LedgerTransaction,
    assert_balanced,
    merchant_payable,
)

PAYOUTS_IN_TRANSIT = "platform:payouts_in_transit"
PAYOUTS_CLEARED = "bank:payouts_cleared"
"""Money the bank confirmed it paid: leaves the platform's settlement account."""


class HoldReason(StrEnum):
    NO_PAYOUT_ACCOUNT = "no_payout_account"
    BALANCE_NOT_POSITIVE = "balance_not_positive"
    REFUNDS_PENDING = "refunds_pending"
    DISPUTES_HELD = "disputes_held"


@dataclass(frozen=True)
class DueBatch:
    batch_id: uuid.UUID
    batch_date: date
    value_date: date
    net: int


@dataclass(frozen=True)
class PayoutAccount:
    account_id: uuid.UUID
    iban: str
    holder_name: str


@dataclass(frozen=True)
class PlannedPayout:
    payout_id: uuid.UUID
    amount: int
    account: PayoutAccount
    lines: tuple[DueBatch, ...]


@dataclass(frozen=True)
class Hold:
    reason: HoldReason
    amount: int
    batch_count: int


def plan_payout(
    due: Sequence[DueBatch],
    account: PayoutAccount | None,
    payable_balance: int,
    payout_id: uuid.UUID,
    disputes_held: int = 0,
) -> PlannedPayout | Hold | None:
    """None when nothing is due. Run under a lock on the due batches (a second run then finds
    them paid), so `payout_id` may be fresh each time."""
    if not due:
        return None
    total = sum(b.net for b in due)
    if account is None:
        return Hold(HoldReason.NO_PAYOUT_ACCOUNT, total, len(due))
    if total <= 0:
        return Hold(HoldReason.BALANCE_NOT_POSITIVE, total, len(due))
    if total > payable_balance:
        reason = HoldReason.DISPUTES_HELD if disputes_held > 0 else HoldReason.REFUNDS_PENDING
        return Hold(reason, total, len(due))
    lines = tuple(sorted(due, key=lambda b: (b.value_date, b.batch_date, str(b.batch_id))))
    return PlannedPayout(payout_id, total, account, lines)


def _transaction(
    payout_id: uuid.UUID, merchant_id: str, kind: Kind, entries: list[Entry]
) -> LedgerTransaction:
    transaction = LedgerTransaction(
        id=uuid.uuid5(payout_id, kind),
        payment_id=payout_id,
        merchant_id=merchant_id,
        kind=kind,
        entries=tuple(entries),
    )
    assert_balanced(transaction.entries)
    return transaction


def payout_transaction(
    payout_id: uuid.UUID, merchant_id: str, amount: int, currency: str
) -> LedgerTransaction:
    """The payout leaves the merchant's payable for the payouts in transit."""
    return _transaction(
        payout_id,
        merchant_id,
        Kind.PAYOUT,
        [
            Entry(merchant_payable(merchant_id), Direction.DEBIT, amount, currency),
            Entry(PAYOUTS_IN_TRANSIT, Direction.CREDIT, amount, currency),
        ],
    )


def paid_transaction(
    payout_id: uuid.UUID, merchant_id: str, amount: int, currency: str
) -> LedgerTransaction:
    """The bank confirmed it: in transit becomes cleared."""
    return _transaction(
        payout_id,
        merchant_id,
        Kind.PAYOUT_PAID,
        [
            Entry(PAYOUTS_IN_TRANSIT, Direction.DEBIT, amount, currency),
            Entry(PAYOUTS_CLEARED, Direction.CREDIT, amount, currency),
        ],
    )


def returned_transaction(
    payout_id: uuid.UUID, merchant_id: str, amount: int, currency: str
) -> LedgerTransaction:
    """The bank sent it back: the merchant is owed it again."""
    return _transaction(
        payout_id,
        merchant_id,
        Kind.PAYOUT_RETURNED,
        [
            Entry(PAYOUTS_IN_TRANSIT, Direction.DEBIT, amount, currency),
            Entry(merchant_payable(merchant_id), Direction.CREDIT, amount, currency),
        ],
    )
