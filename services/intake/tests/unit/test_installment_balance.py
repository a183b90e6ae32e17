"""An installment batch's parts in the balance (domain/balance.py unpaid_parts)."""

from datetime import date

from intake.domain.balance import ClosedBatch, balances, unpaid_parts

REFUNDS, P1, P2, P3 = (
    (date(2026, 3, 23), -1_000),
    (date(2026, 4, 20), 3_334),
    (date(2026, 5, 20), 3_333),
    (date(2026, 6, 22), 3_333),
)


def test_nothing_paid_keeps_every_part() -> None:
    assert unpaid_parts([P3, P1, P2], 0) == [P1, P2, P3]


def test_payouts_pay_the_earliest_parts_first() -> None:
    assert unpaid_parts([P1, P2, P3], 3_334) == [P2, P3]
    assert unpaid_parts([P1, P2, P3], 3_334 + 3_333) == [P3]
    assert unpaid_parts([P1, P2, P3], 10_000) == []
    # The refunds at the batch's own value date were netted into the first payout.
    assert unpaid_parts([REFUNDS, P1, P2, P3], 3_334 - 1_000) == [P2, P3]


def test_a_paid_amount_that_is_no_run_of_parts_leaves_the_difference() -> None:
    assert unpaid_parts([P1, P2, P3], 5_000) == [(P3[0], 5_000)]


def test_the_parts_ahead_are_pending_each_until_its_date() -> None:
    parts = [ClosedBatch("TRY", d, a) for d, a in unpaid_parts([P1, P2, P3], 3_334)]
    [balance] = balances(parts, date(2026, 4, 21))
    assert (balance.pending, balance.available) == (6_666, 0)
    assert (balance.next_value_date, balance.next_value_amount) == (P2[0], 3_333)
