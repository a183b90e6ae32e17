"""Reconciliation: matching authorization's clearing file, the ledger and the payouts of one
merchant, currency and date. Pure.

Every clearing line names the ledger transaction it must have produced: the ledger's ids are
deterministic (a capture's is uuid5(payment, "capture"), a void's reversal uuid5(payment,
"reversal"), a refund's uuid5(refund, "refund")), so matching is by id, whatever batch or
day settlement booked it in. Mismatches, each with its `source` (where the fault shows):

- clearing line without its ledger transaction: `missing` (ledger);
- ledger transaction of the day that no clearing file of any day lists: `missing` (clearing);
- the same operation twice in the file: `duplicate` (clearing);
- amounts that differ (line vs ledger gross, file totals vs its lines): `amount_differs`;
- payouts of the day: lines that do not add up to the payout, a line that is not what its
  batch (or its installment parts) owes, no or another amount of payout in the ledger:
  `amount_differs` / `missing` (ledger) (payouts); a batch in two live payouts: `duplicate`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sanalpos_common.schemas.events import ClearingKind
from settlement.domain.ledger import Kind

LEDGER_KIND = {
    ClearingKind.CAPTURE: Kind.CAPTURE,
    ClearingKind.VOID: Kind.REVERSAL,
    ClearingKind.REFUND: Kind.REFUND,
}
CLEARED_KINDS = frozenset(LEDGER_KIND.values())


class MismatchKind(StrEnum):
    MISSING = "missing"
    DUPLICATE = "duplicate"
    AMOUNT_DIFFERS = "amount_differs"


class Source(StrEnum):
    CLEARING = "clearing"
    LEDGER = "ledger"
    PAYOUTS = "payouts"


@dataclass(frozen=True)
class ClearingItem:
    kind: ClearingKind
    payment_id: uuid.UUID
    refund_id: uuid.UUID | None
    amount: int

    @property
    def ledger_transaction_id(self) -> uuid.UUID:
        return ledger_transaction_id(self.kind, self.payment_id, self.refund_id)

    def describe(self) -> str:
        refund = f" {self.refund_id}" if self.refund_id else ""
        return f"{self.kind.value}{refund} of payment {self.payment_id}"


def ledger_transaction_id(
    kind: ClearingKind, payment_id: uuid.UUID, refund_id: uuid.UUID | None
) -> uuid.UUID:
    """The id of the ledger transaction a cleared operation books (domain/ledger.py)."""
    if kind is ClearingKind.REFUND:
        if refund_id is None:
            raise ValueError("a refund line names its refund")
        return uuid.uuid5(refund_id, Kind.REFUND)
    return uuid.uuid5(payment_id, LEDGER_KIND[kind])


@dataclass(frozen=True)
class LedgerItem:
    transaction_id: uuid.UUID
    kind: Kind
    payment_id: uuid.UUID
    amount: int
    """What went through the acquirer's clearing account: the gross."""


@dataclass(frozen=True)
class FileTotals:
    capture_count: int
    capture_amount: int
    refund_count: int
    refund_amount: int
    void_count: int
    void_amount: int


@dataclass(frozen=True)
class Mismatch:
    kind: MismatchKind
    source: Source
    reference: uuid.UUID
    """The payment (clearing, ledger) or the payout (payouts)."""
    reason: str
    refund_id: uuid.UUID | None = None
    expected: int | None = None
    actual: int | None = None


def match_clearing(
    lines: Sequence[ClearingItem],
    totals: FileTotals | None,
    ledger: Mapping[uuid.UUID, LedgerItem],
    ledger_of_day: Iterable[LedgerItem],
    cleared: set[uuid.UUID],
) -> list[Mismatch]:
    """`ledger`: the ledger transactions the lines name, by id; `ledger_of_day`: the ledger's
    captures, reversals and refunds booked that day; `cleared`: every ledger id named by a
    clearing line received, of any day."""
    found: list[Mismatch] = []
    if totals is not None:
        found += _totals(lines, totals)
    seen = Counter(line.ledger_transaction_id for line in lines)
    reported: set[uuid.UUID] = set()
    for line in lines:
        txid = line.ledger_transaction_id
        if txid in reported:
            continue
        reported.add(txid)
        if seen[txid] > 1:
            found.append(
                Mismatch(
                    MismatchKind.DUPLICATE,
                    Source.CLEARING,
                    line.payment_id,
                    f"{line.describe()} is {seen[txid]} times in the clearing file",
                    line.refund_id,
                    actual=seen[txid],
                )
            )
        booked = ledger.get(txid)
        if booked is None:
            found.append(
                Mismatch(
                    MismatchKind.MISSING,
                    Source.LEDGER,
                    line.payment_id,
                    f"{line.describe()} ({line.amount}) is cleared but not in the ledger",
                    line.refund_id,
                    expected=line.amount,
                )
            )
        elif booked.amount != line.amount:
            found.append(
                Mismatch(
                    MismatchKind.AMOUNT_DIFFERS,
                    Source.LEDGER,
                    line.payment_id,
                    f"{line.describe()}: cleared {line.amount}, ledger {booked.amount}",
                    line.refund_id,
                    expected=line.amount,
                    actual=booked.amount,
                )
            )
    for item in ledger_of_day:
        if item.kind in CLEARED_KINDS and item.transaction_id not in cleared:
            found.append(
                Mismatch(
                    MismatchKind.MISSING,
                    Source.CLEARING,
                    item.payment_id,
                    f"ledger {item.kind.value} of payment {item.payment_id} ({item.amount}) "
                    "is in no clearing file",
                    actual=item.amount,
                )
            )
    return found


def _totals(lines: Sequence[ClearingItem], totals: FileTotals) -> list[Mismatch]:
    found = []
    for kind in ClearingKind:
        amounts = [line.amount for line in lines if line.kind is kind]
        count = getattr(totals, f"{kind.value}_count")
        amount = getattr(totals, f"{kind.value}_amount")
        if (count, amount) != (len(amounts), sum(amounts)):
            found.append(
                Mismatch(
                    MismatchKind.AMOUNT_DIFFERS,
                    Source.CLEARING,
                    uuid.UUID(int=0),
                    f"clearing file {kind.value} totals say {count} for {amount}, its lines "
                    f"{len(amounts)} for {sum(amounts)}",
                    expected=amount,
                    actual=sum(amounts),
                )
            )
    return found


@dataclass(frozen=True)
class PayoutLineCheck:
    batch_id: uuid.UUID
    amount: int
    owed: int
    """What the batch owes this payout: its net, or its installment parts paid by it."""
    live_payouts: int
    """Payouts in transit or paid that carry this batch (more than one: paid twice)."""


@dataclass(frozen=True)
class PayoutCheck:
    payout_id: uuid.UUID
    amount: int
    lines: tuple[PayoutLineCheck, ...]
    ledger_amount: int | None
    """The payout's own ledger transaction; None when it is not there."""


def match_payouts(payouts: Iterable[PayoutCheck]) -> list[Mismatch]:
    found = []
    for payout in payouts:
        pid = payout.payout_id
        total = sum(line.amount for line in payout.lines)
        if total != payout.amount:
            found.append(
                Mismatch(
                    MismatchKind.AMOUNT_DIFFERS,
                    Source.PAYOUTS,
                    pid,
                    f"payout {pid} of {payout.amount} has lines for {total}",
                    expected=total,
                    actual=payout.amount,
                )
            )
        if payout.ledger_amount is None:
            found.append(
                Mismatch(
                    MismatchKind.MISSING,
                    Source.LEDGER,
                    pid,
                    f"payout {pid} ({payout.amount}) is not in the ledger",
                    expected=payout.amount,
                )
            )
        elif payout.ledger_amount != payout.amount:
            found.append(
                Mismatch(
                    MismatchKind.AMOUNT_DIFFERS,
                    Source.LEDGER,
                    pid,
                    f"payout {pid}: {payout.amount}, ledger {payout.ledger_amount}",
                    expected=payout.amount,
                    actual=payout.ledger_amount,
                )
            )
        for line in payout.lines:
            if line.amount != line.owed:
                found.append(
                    Mismatch(
                        MismatchKind.AMOUNT_DIFFERS,
                        Source.PAYOUTS,
                        pid,
                        f"payout {pid} pays batch {line.batch_id} {line.amount}, "
                        f"it owes {line.owed}",
                        expected=line.owed,
                        actual=line.amount,
                    )
                )
            if line.live_payouts > 1:
                found.append(
                    Mismatch(
                        MismatchKind.DUPLICATE,
                        Source.PAYOUTS,
                        pid,
                        f"batch {line.batch_id} is in {line.live_payouts} live payouts",
                        actual=line.live_payouts,
                    )
                )
    return found
