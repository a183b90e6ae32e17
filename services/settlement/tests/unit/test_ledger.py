import uuid

import pytest

from settlement.domain.ledger import (
    CLEARING,
    FEE_REVENUE,
    Direction,
    Entry,
    FeePlan,
    UnbalancedTransaction,
    assert_balanced,
    capture_transaction,
    merchant_payable,
)


def test_capture_debits_clearing_and_credits_merchant_net_and_fee() -> None:
    payment_id = uuid.uuid4()
    tx = capture_transaction(payment_id, "mer_a", 10_000, "TRY", 1, FeePlan(179, 60))
    by_account = {e.account: e for e in tx.entries}
    assert (
        by_account[CLEARING].direction is Direction.DEBIT and by_account[CLEARING].amount == 10_000
    )
    assert by_account[merchant_payable("mer_a")].amount == 10_000 - 179
    assert by_account[FEE_REVENUE].amount == 179
    assert tx.fee == 179


def test_installments_add_commission_per_extra_installment() -> None:
    tx = capture_transaction(uuid.uuid4(), "m", 10_000, "TRY", 6, FeePlan(179, 60))
    assert tx.fee == 179 + 5 * 60


def test_transaction_id_is_deterministic_per_payment() -> None:
    payment_id = uuid.uuid4()
    plan = FeePlan(100, 0)
    assert (
        capture_transaction(payment_id, "m", 5, "TRY", 1, plan).id
        == capture_transaction(payment_id, "m", 5, "TRY", 1, plan).id
    )


def test_zero_fee_omits_the_fee_line_and_stays_balanced() -> None:
    tx = capture_transaction(uuid.uuid4(), "m", 3, "JPY", 1, FeePlan(100, 0))
    assert tx.fee == 0
    assert [e.account for e in tx.entries] == [CLEARING, merchant_payable("m")]


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
