"""Status derivation by precedence from the read model's facts (docs/payment-states.md)."""

import uuid

import pytest

from intake.domain.payment import PaymentFacts, PaymentStatus, derive_status, rank

R1, R2 = uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize(
    ("facts", "status"),
    [
        (PaymentFacts(), PaymentStatus.PENDING),
        (PaymentFacts(action_required=True), PaymentStatus.REQUIRES_ACTION),
        (PaymentFacts(action_required=True, authorized=True), PaymentStatus.AUTHORIZED),
        (PaymentFacts(action_required=True, declined=True), PaymentStatus.DECLINED),
        (PaymentFacts(authorized=True, captured_amount=500), PaymentStatus.CAPTURED),
        (PaymentFacts(authorized=True, expired=True), PaymentStatus.EXPIRED),
        (PaymentFacts(authorized=True, voided=True), PaymentStatus.VOIDED),
        (PaymentFacts(captured_amount=500, voided=True), PaymentStatus.VOIDED),
        (PaymentFacts(captured_amount=500, settled=True), PaymentStatus.SETTLED),
        (PaymentFacts(captured_amount=500, refunds={R1: 100}), PaymentStatus.PARTIALLY_REFUNDED),
        (
            PaymentFacts(captured_amount=500, settled=True, refunds={R1: 100}),
            PaymentStatus.PARTIALLY_REFUNDED,
        ),
        (
            PaymentFacts(captured_amount=500, refunds={R1: 100, R2: 400}),
            PaymentStatus.REFUNDED,
        ),
        # A refund seen before its capture: partially refunded until the capture says more.
        (PaymentFacts(refunds={R1: 100}), PaymentStatus.PARTIALLY_REFUNDED),
    ],
)
def test_precedence(facts: PaymentFacts, status: PaymentStatus) -> None:
    assert derive_status(facts) is status


def test_declined_beats_everything_and_voided_beats_capture() -> None:
    everything = PaymentFacts(
        action_required=True,
        authorized=True,
        declined=True,
        captured_amount=1,
        voided=True,
        expired=True,
        settled=True,
        refunds={R1: 1},
    )
    assert derive_status(everything) is PaymentStatus.DECLINED
    assert derive_status(PaymentFacts(captured_amount=9, settled=True, voided=True)) is (
        PaymentStatus.VOIDED
    )


def test_a_refund_counted_twice_counts_once() -> None:
    once = PaymentFacts(captured_amount=500, refunds={R1: 100})
    assert once.merge(once).refunded_amount == 100
    assert derive_status(once.merge(once)) is PaymentStatus.PARTIALLY_REFUNDED


def test_merge_is_commutative_and_idempotent() -> None:
    a = PaymentFacts(authorized=True, refunds={R1: 5})
    b = PaymentFacts(captured_amount=10, settled=True, refunds={R2: 5})
    assert a.merge(b) == b.merge(a)
    assert a.merge(a) == a


def test_every_status_has_a_rank() -> None:
    assert {rank(s) for s in PaymentStatus} >= {0}
    assert rank(PaymentStatus.PENDING) < rank(PaymentStatus.AUTHORIZED)
    assert rank(PaymentStatus.CAPTURED) < rank(PaymentStatus.SETTLED)
    assert rank(PaymentStatus.SETTLED) < rank(PaymentStatus.PARTIALLY_REFUNDED)
    assert rank(PaymentStatus.PARTIALLY_REFUNDED) < rank(PaymentStatus.REFUNDED)
