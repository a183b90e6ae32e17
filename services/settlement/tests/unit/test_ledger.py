import uuid

import pytest

from sanalpos_common.fees import FeePlan, fee_plan
from settlement.domain.ledger import (
    CLEARING,
    FEE_REVENUE,
    Direction,
    Entry,
    Kind,
    UnbalancedTransaction,
    assert_balanced,
    capture_transaction,
    merchant_payable,
    refund_transaction,
    reversal_transaction,
)

PLAN = FeePlan("test", mdr_bps=179, installment_bps=60)


def test_capture_debits_clearing_and_credits_merchant_net_and_fee() -> None:
    payment_id = uuid.uuid4()
    tx = capture_transaction(payment_id, "mer_a", 10_000, "TRY", 1, PLAN)
    by_account = {e.account: e for e in tx.entries}
    assert (
        by_account[CLEARING].direction is Direction.DEBIT and by_account[CLEARING].amount == 10_000
    )
    assert by_account[merchant_payable("mer_a")].amount == 10_000 - 179
    assert by_account[FEE_REVENUE].amount == 179
    assert tx.fee == 179 and tx.gross == 10_000


def test_installments_add_commission_per_extra_installment() -> None:
    tx = capture_transaction(uuid.uuid4(), "m", 10_000, "TRY", 6, PLAN)
    assert tx.fee == 179 + 5 * 60


def test_shared_standard_plan_is_what_settlement_books() -> None:
    tx = capture_transaction(uuid.uuid4(), "m", 10_000, "TRY", 3, fee_plan("standard"))
    assert tx.fee == fee_plan("standard").fee(10_000, 3) == 179 + 2 * 60


def test_transaction_id_is_deterministic_per_payment() -> None:
    payment_id = uuid.uuid4()
    plan = FeePlan("flat", 100, 0)
    assert (
        capture_transaction(payment_id, "m", 5, "TRY", 1, plan).id
        == capture_transaction(payment_id, "m", 5, "TRY", 1, plan).id
    )


def test_zero_fee_omits_the_fee_line_and_stays_balanced() -> None:
    tx = capture_transaction(uuid.uuid4(), "m", 3, "JPY", 1, FeePlan("flat", 100, 0))
    assert tx.fee == 0
    assert [e.account for e in tx.entries] == [CLEARING, merchant_payable("m")]


def test_reversal_mirrors_every_line_of_the_capture_fee_included() -> None:
    capture = capture_transaction(uuid.uuid4(), "m", 10_000, "TRY", 1, PLAN)
    reversal = reversal_transaction(capture)
    assert reversal.kind is Kind.REVERSAL and reversal.id != capture.id
    assert [(e.account, e.amount) for e in reversal.entries] == [
        (e.account, e.amount) for e in capture.entries
    ]
    assert all(
        r.direction is c.direction.opposite()
        for r, c in zip(reversal.entries, capture.entries, strict=True)
    )
    with pytest.raises(ValueError, match="only a capture"):
        reversal_transaction(reversal)


def test_refund_debits_the_merchant_in_full_and_keeps_the_commission() -> None:
    payment_id, refund_id = uuid.uuid4(), uuid.uuid4()
    tx = refund_transaction(refund_id, payment_id, "m", 2_500, "TRY")
    assert {(e.account, e.direction, e.amount) for e in tx.entries} == {
        (merchant_payable("m"), Direction.DEBIT, 2_500),
        (CLEARING, Direction.CREDIT, 2_500),
    }
    assert tx.fee == 0
    second = refund_transaction(uuid.uuid4(), payment_id, "m", 2_500, "TRY")
    assert second.id != tx.id, "each partial refund is its own transaction"
    assert refund_transaction(refund_id, payment_id, "m", 2_500, "TRY").id == tx.id


def test_unbalanced_or_non_positive_entries_are_refused() -> None:
    with pytest.raises(UnbalancedTransaction):
        assert_balanced(
            (Entry("a", Direction.DEBIT, 10, "TRY"), Entry("b", Direction.CREDIT, 9, "TRY"))
        )
    with pytest.raises(UnbalancedTransaction):
        assert_balanced(
            (Entry("a", Direction.DEBIT, 10, "TRY"), Entry("b", Direction.CREDIT, 10, "USD"))
        )
    with pytest.raises(UnbalancedTransaction):
        assert_balanced(
            (Entry("a", Direction.DEBIT, 0, "TRY"), Entry("b", Direction.CREDIT, 0, "TRY"))
        )
