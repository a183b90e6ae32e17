"""The dispute state machine and its ledger transactions (domain/disputes.py)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from sanalpos_common.schemas.events import DisputeResponse, DisputeStatus
from settlement.domain.batches import BatchLine, batch_totals
from settlement.domain.disputes import (
    Dispute,
    DisputeRefused,
    disputable,
    dispute_hold_account,
    hold_transaction,
    outcome_transactions,
    payable_change,
)
from settlement.domain.ledger import CLEARING, FEE_REVENUE, Direction, Kind, merchant_payable
from settlement.domain.payouts import DueBatch, HoldReason, PayoutAccount, plan_payout

DEADLINE = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)


def dispute(**changes: object) -> Dispute:
    base = Dispute(
        dispute_id=uuid.UUID("7b0c2f7e-4c5d-4a1b-9e8f-0a1b2c3d4e5f"),
        payment_id=uuid.UUID("0b8a5a56-8a44-4f57-8f2d-0d3f4d2f3a11"),
        merchant_id="mer_1",
        amount=10_000,
        currency="TRY",
        reason_code="10.4",
        reason="fraudulent transaction",
        respond_by=DEADLINE,
        fee=15_000,
    )
    return Dispute(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def balances(*transactions: object) -> dict[str, int]:
    """Credit-positive balance per account."""
    totals: dict[str, int] = defaultdict(int)
    for transaction in transactions:
        for e in transaction.entries:  # type: ignore[attr-defined]
            totals[e.account] += e.amount if e.direction is Direction.CREDIT else -e.amount
    return dict(totals)


def test_evidence_before_the_deadline_puts_it_under_review_and_holds_on() -> None:
    answered = dispute().respond(DisputeResponse.EVIDENCE, DEADLINE - timedelta(seconds=1))
    assert answered.status is DisputeStatus.UNDER_REVIEW
    assert answered.held == 10_000 and answered.version == 2
    assert answered.responded_at == DEADLINE - timedelta(seconds=1)


def test_accepting_loses_it_at_once_and_releases_nothing() -> None:
    accepted = dispute().respond(DisputeResponse.ACCEPT, DEADLINE - timedelta(days=1))
    assert (accepted.status, accepted.outcome_reason, accepted.held) == (
        DisputeStatus.LOST,
        "accepted",
        0,
    )


def test_an_answer_after_the_deadline_is_refused() -> None:
    with pytest.raises(DisputeRefused) as refused:
        dispute().respond(DisputeResponse.EVIDENCE, DEADLINE + timedelta(seconds=1))
    assert refused.value.code == "deadline_passed"


def test_a_second_answer_and_an_answer_to_a_closed_dispute_are_refused() -> None:
    answered = dispute().respond(DisputeResponse.EVIDENCE, DEADLINE - timedelta(hours=1))
    with pytest.raises(DisputeRefused) as twice:
        answered.respond(DisputeResponse.ACCEPT, DEADLINE - timedelta(minutes=1))
    assert twice.value.code == "already_responded"
    won = answered.decide(won=True)
    with pytest.raises(DisputeRefused) as closed:
        won.decide(won=False)
    assert closed.value.code == "dispute_closed"
    with pytest.raises(DisputeRefused):
        won.respond(DisputeResponse.EVIDENCE, DEADLINE - timedelta(minutes=1))


def test_the_issuer_rules_with_or_without_an_answer() -> None:
    assert dispute().decide(won=False).outcome_reason == "issuer_lost"
    answered = dispute().respond(DisputeResponse.EVIDENCE, DEADLINE - timedelta(hours=1))
    assert answered.decide(won=True).status is DisputeStatus.WON


def test_no_answer_is_lost_only_after_the_deadline_and_its_grace() -> None:
    assert dispute().expire(DEADLINE + GRACE, GRACE) is None
    lost = dispute().expire(DEADLINE + GRACE + timedelta(seconds=1), GRACE)
    assert lost is not None
    assert (lost.status, lost.outcome_reason) == (DisputeStatus.LOST, "no_response")
    answered = dispute().respond(DisputeResponse.EVIDENCE, DEADLINE - timedelta(hours=1))
    assert answered.expire(DEADLINE + timedelta(days=30), GRACE) is None


def test_won_holds_then_releases_to_the_payable() -> None:
    d = dispute()
    hold = hold_transaction(d)
    [release] = outcome_transactions(d.decide(won=True))
    assert (hold.kind, release.kind) == (Kind.DISPUTE_HOLD, Kind.DISPUTE_RELEASE)
    assert payable_change(hold) == -10_000 and payable_change(release) == 10_000
    after = balances(hold, release)
    assert after[merchant_payable("mer_1")] == 0
    assert after[dispute_hold_account("mer_1")] == 0


def test_lost_sends_the_amount_back_to_the_scheme_and_debits_the_fee() -> None:
    d = dispute()
    hold = hold_transaction(d)
    loss, fee = outcome_transactions(d.decide(won=False))
    assert (loss.kind, fee.kind) == (Kind.DISPUTE_LOSS, Kind.DISPUTE_FEE)
    after = balances(hold, loss, fee)
    assert after[merchant_payable("mer_1")] == -25_000
    assert after[dispute_hold_account("mer_1")] == 0
    assert after[CLEARING] == 10_000  # owed back to the card scheme
    assert after[FEE_REVENUE] == 15_000
    assert sum(after.values()) == 0
    for transaction in (hold, loss, fee):  # each one balanced, with a stable id
        assert (
            sum(
                e.amount if e.direction is Direction.DEBIT else -e.amount
                for e in transaction.entries
            )
            == 0
        )
    assert outcome_transactions(d.decide(won=False))[0].id == loss.id


def test_no_fee_no_fee_line_and_an_open_dispute_has_no_outcome() -> None:
    assert [t.kind for t in outcome_transactions(dispute(fee=0).decide(won=False))] == [
        Kind.DISPUTE_LOSS
    ]
    with pytest.raises(ValueError, match="no outcome"):
        outcome_transactions(dispute())


def test_at_most_the_captured_amount_less_refunds_and_disputes() -> None:
    assert disputable(10_000, 2_000, 3_000, 5_000)
    assert not disputable(10_000, 2_000, 3_000, 5_001)
    assert not disputable(10_000, 0, 0, 0)


def test_a_hold_in_a_batch_lowers_its_net_and_the_payout_waits() -> None:
    d = dispute()
    hold = hold_transaction(d)
    lines = [BatchLine(hold.kind, e.account, e.direction, e.amount) for e in hold.entries]
    assert batch_totals(merchant_payable("mer_1"), lines).net == -10_000
    # The sale's batch is due, the hold's batch not yet: the payable (sale less hold) is
    # below what the due batch says, so nothing is paid out while the money is held.
    due = [DueBatch(uuid.uuid4(), DEADLINE.date(), DEADLINE.date(), 9_700)]
    account = PayoutAccount(uuid.uuid4(), "TR950006100000000000039595", "Shop")
    held = plan_payout(due, account, 9_700 - 10_000, uuid.uuid4(), disputes_held=10_000)
    assert getattr(held, "reason", None) is HoldReason.DISPUTES_HELD
