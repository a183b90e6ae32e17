import uuid

from sanalpos_common.fees import FeePlan
from settlement.domain.batches import BatchLine, BatchTotals, batch_totals
from settlement.domain.ledger import (
    LedgerTransaction,
    capture_transaction,
    merchant_payable,
    refund_transaction,
    reversal_transaction,
)

PLAN = FeePlan("test", mdr_bps=200, installment_bps=0)  # 2%: easy numbers


def lines_of(*transactions: LedgerTransaction) -> list[BatchLine]:
    """What the batch query aggregates, without the aggregation (sums are additive)."""
    return [
        BatchLine(t.kind, e.account, e.direction, e.amount) for t in transactions for e in t.entries
    ]


def test_totals_of_sales_refunds_and_a_same_day_void() -> None:
    sale_a = capture_transaction(uuid.uuid4(), "m", 10_000, "TRY", 1, PLAN)
    sale_b = capture_transaction(uuid.uuid4(), "m", 5_000, "TRY", 1, PLAN)
    voided = reversal_transaction(sale_b)
    refund = refund_transaction(uuid.uuid4(), sale_a.payment_id, "m", 3_000, "TRY")
    totals = batch_totals(merchant_payable("m"), lines_of(sale_a, sale_b, voided, refund))
    assert totals == BatchTotals(
        gross=15_000, fees=200, refunds=3_000, reversals=5_000, net=10_000 - 200 - 3_000
    )
    assert totals.net == totals.gross - totals.reversals - totals.fees - totals.refunds


def test_refunds_larger_than_the_days_sales_leave_a_negative_net() -> None:
    refund = refund_transaction(uuid.uuid4(), uuid.uuid4(), "m", 7_000, "TRY")
    assert batch_totals(merchant_payable("m"), lines_of(refund)).net == -7_000


def test_empty_batch_totals_are_zero() -> None:
    assert batch_totals(merchant_payable("m"), []) == BatchTotals()
