"""The read model under disorder: every order of a payment's events, each also delivered twice,
ends in the same status, and no step moves the status back along the lifecycle."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from intake.domain.outcomes import record, replay, rule_of, status_answers_wait
from intake.domain.payment import PaymentFacts, PaymentStatus, derive_status, rank
from sanalpos_common.schemas.events import (
    ActionRequired,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentExpired,
    PaymentOperation,
    PaymentOperationFailed,
    PaymentRefunded,
    PaymentSettled,
    PaymentVoided,
)

PAYMENT = uuid.uuid4()
MERCHANT = "mer_disorder"
Event = BaseModel
"""An outcome event's payload: its type says what it is."""


def authorized(amount: int = 1000) -> Event:
    return PaymentAuthorized(
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        amount=amount,
        currency="TRY",
        auth_code="A1B2C3",
        response_code="00",
        installments=1,
        capture=False,
    )


def captured(amount: int) -> Event:
    return PaymentCaptured(
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        amount=amount,
        currency="TRY",
        installments=1,
        auth_code="A1B2C3",
        authorized_amount=1000,
    )


def refunded(amount: int, refund_id: uuid.UUID | None = None) -> Event:
    return PaymentRefunded(
        refund_id=refund_id or uuid.uuid4(),
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        amount=amount,
        currency="TRY",
        reason="returned",
    )


def settled(gross: int) -> Event:
    return PaymentSettled(
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        gross_amount=gross,
        fee_amount=20,
        net_amount=gross - 20,
        currency="TRY",
        ledger_transaction_id=uuid.uuid4(),
    )


def voided(amount: int, after_capture: bool) -> Event:
    return PaymentVoided(
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        amount=amount,
        currency="TRY",
        after_capture=after_capture,
    )


def expired() -> Event:
    return PaymentExpired(
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        amount=1000,
        currency="TRY",
        expired_at=datetime.now(UTC),
    )


def action_required() -> Event:
    return PaymentActionRequired(
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        amount=1000,
        currency="TRY",
        action=ActionRequired.REVIEW,
        score=60,
    )


def declined() -> Event:
    return PaymentDeclined(
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        amount=1000,
        currency="TRY",
        response_code="05",
        reason="do not honour",
        declined_by="issuer",
    )


def refund_failed() -> Event:
    return PaymentOperationFailed(
        payment_id=PAYMENT,
        merchant_id=MERCHANT,
        operation=PaymentOperation.REFUND,
        refund_id=uuid.uuid4(),
        amount=100,
        reason="refund exceeds captured",
    )


SCENARIOS: dict[str, tuple[list[Event], PaymentStatus]] = {
    "pre-auth, partial capture, settled, two partial refunds": (
        [authorized(), captured(700), settled(700), refunded(200), refunded(300)],
        PaymentStatus.PARTIALLY_REFUNDED,
    ),
    "partial capture refunded in full by two refunds": (
        [authorized(), captured(700), refunded(200), refunded(500), refund_failed()],
        PaymentStatus.REFUNDED,
    ),
    "sale refunded in full after settlement": (
        [authorized(), captured(1000), settled(1000), refunded(1000)],
        PaymentStatus.REFUNDED,
    ),
    "sale voided before the cut-off": (
        [authorized(), captured(1000), voided(1000, after_capture=True)],
        PaymentStatus.VOIDED,
    ),
    "pre-auth voided": ([authorized(), voided(1000, after_capture=False)], PaymentStatus.VOIDED),
    "pre-auth expired": ([authorized(), expired()], PaymentStatus.EXPIRED),
    "reviewed then captured": (
        [action_required(), authorized(), captured(1000)],
        PaymentStatus.CAPTURED,
    ),
    "reviewed then settled": (
        [action_required(), authorized(), captured(1000), settled(1000)],
        PaymentStatus.SETTLED,
    ),
    "reviewed then declined": ([action_required(), declined()], PaymentStatus.DECLINED),
    "pre-auth waiting": ([action_required(), authorized()], PaymentStatus.AUTHORIZED),
}


def statuses_along(events: list[Event]) -> list[PaymentStatus]:
    facts, seen = PaymentFacts(), []
    for payload in events:
        facts = record(facts, payload)
        seen.append(derive_status(facts))
    return seen


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_order_and_duplication_gives_the_same_final_status(name: str) -> None:
    events, expected = SCENARIOS[name]
    orders = 0
    for order in itertools.permutations(events):
        for delivery in (list(order), list(order) + list(order), [e for e in order for _ in "xx"]):
            along = statuses_along(delivery)
            assert along[-1] is expected, (name, [type(e).__name__ for e in delivery])
            ranks = [rank(s) for s in along]
            assert ranks == sorted(ranks), (name, along)
        orders += 1
    assert orders == len(list(itertools.permutations(events)))


def test_a_duplicated_refund_event_counts_once() -> None:
    refund_id = uuid.uuid4()
    facts = replay([captured(700), refunded(300, refund_id), refunded(300, refund_id)])
    assert facts.refunded_amount == 300
    assert derive_status(facts) is PaymentStatus.PARTIALLY_REFUNDED


@pytest.mark.parametrize("is_sale", [True, False])
@pytest.mark.parametrize("name", SCENARIOS)
def test_every_event_that_lets_a_wait_be_answered_wakes_the_waiters(
    name: str, is_sale: bool
) -> None:
    """The consumer wakes waiting requests only for event types whose rule ends a wait: in any
    order, the event that first gives a status a waiting request can be answered with is one."""
    events, _ = SCENARIOS[name]
    for order in itertools.permutations(events):
        facts = PaymentFacts()
        for payload in order:
            before = status_answers_wait(derive_status(facts), is_sale=is_sale)
            facts = record(facts, payload)
            if status_answers_wait(derive_status(facts), is_sale=is_sale) and not before:
                assert rule_of(payload).ends_wait_for(is_sale=is_sale), (name, order)
