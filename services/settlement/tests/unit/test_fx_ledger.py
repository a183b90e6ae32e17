"""Ledger transactions of converted payments: each balances in every currency on its own, the
merchant's payable ends in the settlement currency only, and the settlement-currency batch's
totals keep gross - fees - refunds - reversals = net."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal

from sanalpos_common.fees import fee_plan
from settlement.domain.batches import BatchLine, batch_totals
from settlement.domain.fx import convert, markup
from settlement.domain.fx_ledger import (
    conversion_transaction,
    converted_refund_transaction,
    converted_reversal,
    markup_transaction,
)
from settlement.domain.ledger import (
    FX_CLEARING,
    Direction,
    Kind,
    LedgerTransaction,
    capture_transaction,
    merchant_payable,
)

MERCHANT = "mer_fx_unit"
PAYABLE = merchant_payable(MERCHANT)
RATE = Decimal("47.8912")


def balances(*transactions: LedgerTransaction) -> dict[tuple[str, str], int]:
    """Debit minus credit per account and currency."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for t in transactions:
        for e in t.entries:
            totals[(e.account, e.currency)] += (
                e.amount if e.direction is Direction.DEBIT else -e.amount
            )
    return {k: v for k, v in totals.items() if v}


def per_currency(*transactions: LedgerTransaction) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for (_, currency), amount in balances(*transactions).items():
        sums[currency] += amount
    return dict(sums)


def converted_sale(payment_id: uuid.UUID) -> tuple[LedgerTransaction, ...]:
    capture = capture_transaction(payment_id, MERCHANT, 10_000, "EUR", 1, fee_plan("volume"))
    net = 10_000 - capture.fee
    converted = convert(net, "EUR", "TRY", RATE)
    conversion = conversion_transaction(payment_id, MERCHANT, net, "EUR", converted, "TRY")
    fx_markup = markup_transaction(payment_id, MERCHANT, markup(converted, 100), "TRY")
    assert fx_markup is not None
    return capture, conversion, fx_markup


def lines(transactions: tuple[LedgerTransaction, ...], currency: str) -> list[BatchLine]:
    return [
        BatchLine(t.kind, e.account, e.direction, e.amount)
        for t in transactions
        for e in t.entries
        if e.currency == currency
    ]


def test_a_converted_sale_balances_in_both_currencies_and_pays_in_try() -> None:
    sale = converted_sale(uuid.uuid4())
    for transaction in sale:
        assert set(per_currency(transaction).values()) <= {0}
    held = balances(*sale)
    assert held[(PAYABLE, "TRY")] == -(471_776 - 4_718)  # a credit: owed to the merchant
    assert (PAYABLE, "EUR") not in held
    assert held[(FX_CLEARING, "EUR")] == -9_851 and held[(FX_CLEARING, "TRY")] == 471_776
    assert sale[1].currency == "TRY"  # the conversion is recorded under the batch's currency


def test_the_try_batch_counts_the_converted_net_and_the_markup() -> None:
    totals = batch_totals(PAYABLE, lines(converted_sale(uuid.uuid4()), "TRY"))
    assert (totals.gross, totals.fees, totals.net) == (471_776, 4_718, 467_058)
    assert totals.gross - totals.fees - totals.refunds - totals.reversals == totals.net


def test_a_reversal_undoes_every_line_in_one_transaction() -> None:
    sale = converted_sale(uuid.uuid4())
    reversal = converted_reversal(sale[0], *sale[1:], batch_currency="TRY")
    assert reversal.kind is Kind.REVERSAL and reversal.currency == "TRY"
    assert balances(*sale, reversal) == {}
    totals = batch_totals(PAYABLE, lines((*sale, reversal), "TRY"))
    assert (totals.gross, totals.reversals, totals.fees, totals.net) == (471_776, 471_776, 0, 0)


def test_a_refund_at_the_fixed_rate_balances_and_leaves_the_markup() -> None:
    payment_id = uuid.uuid4()
    sale = converted_sale(payment_id)
    back = convert(5_000, "EUR", "TRY", RATE)
    refund = converted_refund_transaction(
        uuid.uuid4(), payment_id, MERCHANT, 5_000, "EUR", back, "TRY"
    )
    assert set(per_currency(refund).values()) <= {0}
    held = balances(*sale, refund)
    assert held[(PAYABLE, "TRY")] == -(467_058 - 239_456)
    totals = batch_totals(PAYABLE, lines((refund,), "TRY"))
    assert (totals.refunds, totals.net) == (239_456, -239_456)


def test_no_markup_books_no_markup_transaction() -> None:
    assert markup_transaction(uuid.uuid4(), MERCHANT, 0, "TRY") is None
