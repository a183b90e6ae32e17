"""End-of-day batch arithmetic: totals from the batch's ledger lines, payout date. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from settlement.domain.ledger import (
    CLEARING,
    FEE_REVENUE,
    FX_CLEARING,
    FX_MARKUP_REVENUE,
    Direction,
    Kind,
)


@dataclass(frozen=True)
class BatchLine:
    """One aggregated row: sum of the amounts of one account and direction per kind."""

    kind: Kind
    account: str
    direction: Direction
    amount: int


@dataclass(frozen=True)
class BatchTotals:
    gross: int = 0
    """Captured amounts booked in the batch."""
    fees: int = 0
    """Commission kept: capture fees less the fees of captures reversed in the batch."""
    refunds: int = 0
    reversals: int = 0
    """Captured amounts cancelled ("iptal") in the batch."""
    net: int = 0
    """What the merchant is paid for the batch (may be negative: refunds exceed sales)."""


def batch_totals(merchant_payable: str, lines: Iterable[BatchLine]) -> BatchTotals:
    """`lines` are in the batch's currency only. A payment converted into it counts with its
    converted net as gross (its card fee was taken in the payment's currency) and its FX
    markup as a fee, so gross - fees - refunds - reversals = net still holds."""
    gross = fees = refunds = reversals = net = 0
    for line in lines:
        debit = line.direction is Direction.DEBIT
        if line.account == merchant_payable:
            net += -line.amount if debit else line.amount
            if line.kind is Kind.REFUND:
                refunds += line.amount
        elif line.account in (FEE_REVENUE, FX_MARKUP_REVENUE):
            fees += -line.amount if debit else line.amount
        elif line.account == CLEARING and line.kind is Kind.CAPTURE:
            gross += line.amount
        elif line.account == CLEARING and line.kind is Kind.REVERSAL:
            reversals += line.amount
        # --- multi-currency (issue 13, fx) ---
        elif line.account == FX_CLEARING and line.kind is Kind.FX_CONVERSION and debit:
            gross += line.amount
        elif line.account == FX_CLEARING and line.kind is Kind.REVERSAL and not debit:
            reversals += line.amount
    return BatchTotals(gross=gross, fees=fees, refunds=refunds, reversals=reversals, net=net)
