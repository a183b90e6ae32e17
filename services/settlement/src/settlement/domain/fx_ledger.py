"""Ledger transactions of converted payments. Pure.

A payment in EUR for a merchant that converts EUR into TRY is booked as:
- capture (EUR, as any capture): acquirer clearing debit gross; merchant payable credit gross
  less the card fee; fee revenue credit the fee;
- fx_conversion: the payable's EUR net moves out through the FX clearing account and comes back
  in TRY at the payment's fixed rate (EUR: payable debit, FX clearing credit; TRY: FX clearing
  debit, payable credit), so the merchant's EUR payable is back to zero;
- fx_markup (TRY): payable debit, FX markup revenue credit.
Every transaction balances in each currency on its own; the FX clearing account holds the
platform's open position (EUR credit, TRY debit) until treasury squares it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from settlement.domain.ledger import (
    CLEARING,
    FX_CLEARING,
    FX_MARKUP_REVENUE,
    Direction,
    Entry,
    Kind,
    LedgerTransaction,
    _transaction,
    merchant_payable,
)


def conversion_transaction(
    payment_id: uuid.UUID,
    merchant_id: str,
    amount: int,
    currency: str,
    converted: int,
    settlement_currency: str,
) -> LedgerTransaction:
    payable = merchant_payable(merchant_id)
    return _transaction(
        uuid.uuid5(payment_id, Kind.FX_CONVERSION),
        payment_id,
        merchant_id,
        Kind.FX_CONVERSION,
        [
            Entry(FX_CLEARING, Direction.DEBIT, converted, settlement_currency),
            Entry(payable, Direction.CREDIT, converted, settlement_currency),
            Entry(payable, Direction.DEBIT, amount, currency),
            Entry(FX_CLEARING, Direction.CREDIT, amount, currency),
        ],
    )


def markup_transaction(
    payment_id: uuid.UUID, merchant_id: str, amount: int, settlement_currency: str
) -> LedgerTransaction | None:
    """None for a zero markup (a transaction without entries is not booked)."""
    if amount <= 0:
        return None
    return _transaction(
        uuid.uuid5(payment_id, Kind.FX_MARKUP),
        payment_id,
        merchant_id,
        Kind.FX_MARKUP,
        [
            Entry(merchant_payable(merchant_id), Direction.DEBIT, amount, settlement_currency),
            Entry(FX_MARKUP_REVENUE, Direction.CREDIT, amount, settlement_currency),
        ],
    )


def converted_reversal(
    capture: LedgerTransaction, *fx: LedgerTransaction, batch_currency: str
) -> LedgerTransaction:
    """One reversal of a converted capture: every line of the capture, its conversion and its
    markup mirrored, netted per account and currency (the payable's EUR lines cancel out), the
    batch's currency first."""
    if capture.kind is not Kind.CAPTURE:
        raise ValueError("only a capture can be reversed")
    net: dict[tuple[str, str], int] = defaultdict(int)
    for transaction in (capture, *fx):
        for e in transaction.entries:
            net[(e.account, e.currency)] += (
                e.amount if e.direction is Direction.DEBIT else -e.amount
            )
    entries = [
        Entry(account, Direction.CREDIT if amount > 0 else Direction.DEBIT, abs(amount), currency)
        for (account, currency), amount in net.items()
        if amount
    ]
    entries.sort(key=lambda e: e.currency != batch_currency)
    return _transaction(
        uuid.uuid5(capture.payment_id, Kind.REVERSAL),
        capture.payment_id,
        capture.merchant_id,
        Kind.REVERSAL,
        entries,
    )


def converted_refund_transaction(
    refund_id: uuid.UUID,
    payment_id: uuid.UUID,
    merchant_id: str,
    amount: int,
    currency: str,
    converted: int,
    settlement_currency: str,
) -> LedgerTransaction:
    """A refund of a converted payment, at the rate fixed at its capture: the merchant pays it
    back in its settlement currency, the acquirer is paid in the payment's currency, the FX
    clearing account takes the difference in currency. The markup is not given back (like the
    card fee on an "iade")."""
    return _transaction(
        uuid.uuid5(refund_id, Kind.REFUND),
        payment_id,
        merchant_id,
        Kind.REFUND,
        [
            Entry(merchant_payable(merchant_id), Direction.DEBIT, converted, settlement_currency),
            Entry(FX_CLEARING, Direction.CREDIT, converted, settlement_currency),
            Entry(FX_CLEARING, Direction.DEBIT, amount, currency),
            Entry(CLEARING, Direction.CREDIT, amount, currency),
        ],
    )
