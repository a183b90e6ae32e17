"""The netting rule: which due batches become a payout, and what is held and why."""

from __future__ import annotations

import uuid
from datetime import date

from settlement.domain.ledger import Direction, Kind, assert_balanced, merchant_payable
from settlement.domain.payouts import (
    PAYOUTS_CLEARED,
    PAYOUTS_IN_TRANSIT,
    DueBatch,
    Hold,
    HoldReason,
    PayoutAccount,
    PlannedPayout,
    paid_transaction,
    payout_transaction,
    plan_payout,
    returned_transaction,
)

ACCOUNT = PayoutAccount(uuid.uuid4(), "TR950006100000000000039595", "Shop Ltd")
NEW_ID = uuid.UUID(int=7)


def batch(net: int, day: int = 2) -> DueBatch:
    return DueBatch(uuid.uuid4(), date(2026, 11, day - 1), date(2026, 11, day), net)


def test_nothing_due_plans_nothing() -> None:
    assert plan_payout([], ACCOUNT, 10_000, NEW_ID) is None


def test_due_batches_become_one_payout_with_one_line_each() -> None:
    due = [batch(9_800, 3), batch(4_900, 2)]
    planned = plan_payout(due, ACCOUNT, 14_700, NEW_ID)
    assert isinstance(planned, PlannedPayout)
    assert (planned.payout_id, planned.amount, planned.account) == (NEW_ID, 14_700, ACCOUNT)
    assert [line.net for line in planned.lines] == [4_900, 9_800], "oldest value date first"


def test_a_refund_batch_nets_against_the_sales_of_the_same_payout() -> None:
    due = [batch(-3_000), batch(9_800)]
    planned = plan_payout(due, ACCOUNT, 6_800, NEW_ID)
    assert isinstance(planned, PlannedPayout)
    assert planned.amount == 6_800
    assert sorted(line.net for line in planned.lines) == [-3_000, 9_800]


def test_a_refund_larger_than_the_due_money_pays_nothing_and_stays_due() -> None:
    held = plan_payout([batch(-3_000)], ACCOUNT, -3_000, NEW_ID)
    assert held == Hold(HoldReason.BALANCE_NOT_POSITIVE, -3_000, 1)
    assert plan_payout([batch(2_000), batch(-2_000)], ACCOUNT, 0, NEW_ID) == Hold(
        HoldReason.BALANCE_NOT_POSITIVE, 0, 2
    )


def test_never_more_than_the_payable_balance_a_later_refund_left() -> None:
    """A refund booked since (in a batch not yet due) took part of the balance: wait for it."""
    held = plan_payout([batch(9_800)], ACCOUNT, 5_000, NEW_ID)
    assert held == Hold(HoldReason.REFUNDS_PENDING, 9_800, 1)
    assert isinstance(plan_payout([batch(9_800)], ACCOUNT, 9_800, NEW_ID), PlannedPayout)


def test_without_a_payout_account_the_money_is_held_with_the_reason() -> None:
    assert plan_payout([batch(9_800)], None, 9_800, NEW_ID) == Hold(
        HoldReason.NO_PAYOUT_ACCOUNT, 9_800, 1
    )


def test_payout_ledger_lines_move_money_and_balance() -> None:
    payout_id = uuid.uuid4()
    payable = merchant_payable("m-1")
    out = payout_transaction(payout_id, "m-1", 14_700, "TRY")
    paid = paid_transaction(payout_id, "m-1", 14_700, "TRY")
    back = returned_transaction(payout_id, "m-1", 14_700, "TRY")
    for transaction in (out, paid, back):
        assert_balanced(transaction.entries)
        assert transaction.payment_id == payout_id
    assert {(e.account, e.direction) for e in out.entries} == {
        (payable, Direction.DEBIT),
        (PAYOUTS_IN_TRANSIT, Direction.CREDIT),
    }
    assert {(e.account, e.direction) for e in paid.entries} == {
        (PAYOUTS_IN_TRANSIT, Direction.DEBIT),
        (PAYOUTS_CLEARED, Direction.CREDIT),
    }
    assert {(e.account, e.direction) for e in back.entries} == {
        (PAYOUTS_IN_TRANSIT, Direction.DEBIT),
        (payable, Direction.CREDIT),
    }
    assert (out.kind, paid.kind, back.kind) == (Kind.PAYOUT, Kind.PAYOUT_PAID, Kind.PAYOUT_RETURNED)
    assert len({out.id, paid.id, back.id}) == 3, "one transaction of each kind per payout"
    assert payout_transaction(payout_id, "m-1", 14_700, "TRY").id == out.id
