"""The outcome registry: one rule per outcome event type, and the consumer built from it."""

from __future__ import annotations

import uuid

import pytest

from intake.domain.outcomes import (
    OUTCOMES,
    RefundFailed,
    WaitEnd,
    decision_of,
    event_details,
    rule_of,
)
from intake.domain.payment import Operation, PaymentFacts
from intake.service_layer.balance import on_batch_closed
from intake.service_layer.consumed import CONSUMER_HANDLERS
from intake.service_layer.disputes import on_dispute_updated
from intake.service_layer.fx import on_fx_rate_updated
from intake.service_layer.lifecycle import OUTCOME_HANDLERS
from intake.service_layer.payouts import on_payout_updated
from intake.service_layer.statements import on_ledger_day
from sanalpos_common import topics
from sanalpos_common.schemas.events import (
    BatchClosed,
    DisputeUpdated,
    FxRateUpdated,
    LedgerDaySummarized,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentOperation,
    PaymentOperationFailed,
    PaymentSettled,
    PayoutUpdated,
    topic_of,
)


def test_the_registry_covers_every_outcome_topic_and_the_consumer_subscribes_to_them() -> None:
    assert sorted(topic_of(model) for model in OUTCOMES) == sorted(topics.OUTCOME_TOPICS)
    assert sorted(OUTCOME_HANDLERS.topics) == sorted(topics.OUTCOME_TOPICS)
    assert set(OUTCOME_HANDLERS) == set(OUTCOMES)


def test_the_consumer_adds_closed_batches_and_payouts_to_the_outcomes_and_nothing_else() -> None:
    assert sorted(CONSUMER_HANDLERS.topics) == sorted(
        (
            *topics.OUTCOME_TOPICS,
            topics.BATCH_CLOSED,
            topics.PAYOUT_UPDATED,
            topics.LEDGER_DAY,
            topics.DISPUTE_UPDATED,
            topics.FX_RATE_UPDATED,
        )
    )
    assert CONSUMER_HANDLERS[BatchClosed] is on_batch_closed
    assert CONSUMER_HANDLERS[PayoutUpdated] is on_payout_updated
    assert CONSUMER_HANDLERS[LedgerDaySummarized] is on_ledger_day
    assert CONSUMER_HANDLERS[DisputeUpdated] is on_dispute_updated
    assert CONSUMER_HANDLERS[FxRateUpdated] is on_fx_rate_updated
    assert set(CONSUMER_HANDLERS) == {
        *OUTCOMES,
        BatchClosed,
        PayoutUpdated,
        LedgerDaySummarized,
        DisputeUpdated,
        FxRateUpdated,
    }


@pytest.mark.parametrize(
    ("ends_wait", "is_sale", "ends"),
    [
        (WaitEnd.ALWAYS, True, True),
        (WaitEnd.ALWAYS, False, True),
        (WaitEnd.PRE_AUTHORIZATION, True, False),
        (WaitEnd.PRE_AUTHORIZATION, False, True),
        (WaitEnd.NEVER, True, False),
        (WaitEnd.NEVER, False, False),
    ],
)
def test_ends_wait_for(ends_wait: WaitEnd, is_sale: bool, ends: bool) -> None:
    rule = OUTCOMES[PaymentAuthorized]
    assert (
        type(rule)(details=rule.details, ends_wait=ends_wait).ends_wait_for(is_sale=is_sale) is ends
    )


def test_an_authorization_answers_a_pre_authorization_but_not_a_sale() -> None:
    rule = OUTCOMES[PaymentAuthorized]
    assert rule.ends_wait_for(is_sale=False)
    assert not rule.ends_wait_for(is_sale=True)


def test_a_failed_refund_frees_its_refund_answers_its_operation_and_keeps_the_facts() -> None:
    refund_id = uuid.uuid4()
    failed = PaymentOperationFailed(
        payment_id=uuid.uuid4(),
        merchant_id="mer_rules",
        operation=PaymentOperation.REFUND,
        refund_id=refund_id,
        amount=100,
        reason="refund exceeds captured",
    )
    rule = rule_of(failed)
    assert rule.facts(failed) == PaymentFacts()
    assert rule.answers(failed) == (Operation.REFUND,)
    assert rule.refund(failed) == RefundFailed(refund_id, "refund exceeds captured")
    assert not rule.ends_wait_for(is_sale=True) and not rule.ends_wait_for(is_sale=False)
    assert event_details(failed) == {
        "operation": "refund",
        "refund_id": str(refund_id),
        "amount": 100,
        "reason": "refund exceeds captured",
    }


@pytest.mark.parametrize(
    ("model", "decision"),
    [
        (PaymentAuthorized, "authorized"),
        (PaymentCaptured, "authorized"),  # a sale's capture may overtake its authorization
        (PaymentDeclined, "declined"),
        (PaymentActionRequired, "review"),
        (PaymentSettled, None),
    ],
)
def test_the_events_that_decide_a_payment_end_its_authorization_latency(
    model: type, decision: str | None
) -> None:
    payload = model.model_construct()
    assert decision_of(payload) == decision
