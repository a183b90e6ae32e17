"""Capture, void and refund commands against the real database: state, holds, card balance
and the events written to the outbox."""

from __future__ import annotations

import uuid

from sanalpos_common import topics
from sanalpos_common.messaging import idempotent
from sanalpos_common.schemas.events import CapturePayment

from .conftest import MERCHANT, Lifecycle


async def test_partial_capture_takes_the_amount_and_releases_the_rest(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 40_000)
    assert await lifecycle.available(pan) == 100_000 - 40_000

    await lifecycle.capture(payment, 25_000)

    state = await lifecycle.state(payment)
    assert (state["status"], state["captured_amount"]) == ("captured", 25_000)
    assert (state["hold_status"], state["hold_captured"]) == ("captured", 25_000)
    assert await lifecycle.available(pan) == 100_000 - 25_000
    topic, captured = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_CAPTURED
    assert (captured["amount"], captured["authorized_amount"]) == (25_000, 40_000)
    assert (captured["installments"], captured["currency"]) == (3, "TRY")
    assert captured["auth_code"]
    await lifecycle.assert_balanced(pan)


async def test_a_sale_captures_at_once_with_its_authorized_amount(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 12_345, capture=True)
    events = await lifecycle.events(payment)
    assert [t for t, _ in events] == [topics.PAYMENT_AUTHORIZED, topics.PAYMENT_CAPTURED]
    assert events[1][1]["authorized_amount"] == 12_345
    state = await lifecycle.state(payment)
    assert (state["status"], state["captured_amount"], state["expires_at"]) == (
        "captured",
        12_345,
        None,
    )


async def test_capture_refusals_name_the_reason_and_change_nothing(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 10_000)

    await lifecycle.capture(payment, 10_001)
    topic, failed = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_OPERATION_FAILED
    assert failed["operation"] == "capture" and failed["amount"] == 10_001
    assert failed["reason"] == "capture amount 10001 exceeds the authorized amount 10000"

    await lifecycle.capture(payment, 5_000, currency="EUR")
    assert (await lifecycle.last(payment))[1]["reason"] == (
        "currency EUR does not match the payment's TRY"
    )
    await lifecycle.capture(payment, 5_000, merchant="mer_someone_else")
    assert (await lifecycle.last(payment))[1]["reason"] == "no authorization for this payment"
    await lifecycle.capture(uuid.uuid4(), 5_000)  # never authorized here

    assert (await lifecycle.state(payment))["status"] == "authorized"
    assert await lifecycle.available(pan) == 100_000 - 10_000

    await lifecycle.capture(payment, 10_000)
    await lifecycle.capture(payment, 10_000)  # a second capture (another command, not a repeat)
    assert (await lifecycle.last(payment))[1]["reason"] == (
        "cannot capture a payment that is captured"
    )
    captures = [t for t in await lifecycle.topics_of(payment) if t == topics.PAYMENT_CAPTURED]
    assert len(captures) == 1
    await lifecycle.assert_balanced(pan)


async def test_a_declined_payment_cannot_be_captured_voided_or_refunded(
    lifecycle: Lifecycle,
) -> None:
    pan = await lifecycle.card(limit_major=10)
    payment = await lifecycle.pay(pan, 5_000)  # over the 10.00 limit: declined 51
    await lifecycle.capture(payment, 5_000)
    await lifecycle.void(payment)
    await lifecycle.refund(payment, 5_000)
    events = await lifecycle.events(payment)
    assert [t for t, _ in events] == [topics.PAYMENT_DECLINED] + [
        topics.PAYMENT_OPERATION_FAILED
    ] * 3
    assert [(e["operation"], e["reason"]) for _, e in events[1:]] == [
        ("capture", "cannot capture a payment that is declined"),
        ("void", "cannot void a payment that is declined"),
        ("refund", "cannot refund a payment that is declined"),
    ]


async def test_void_before_capture_releases_the_hold(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 30_000)
    await lifecycle.void(payment)

    state = await lifecycle.state(payment)
    assert (state["status"], state["hold_status"]) == ("voided", "released")
    assert await lifecycle.available(pan) == 100_000
    topic, voided = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_VOIDED
    assert (voided["after_capture"], voided["amount"]) == (False, 30_000)

    await lifecycle.void(payment)
    await lifecycle.capture(payment, 30_000)
    failures = [e for t, e in await lifecycle.events(payment) if t != topics.PAYMENT_VOIDED]
    assert [(e["operation"], e["reason"]) for e in failures[-2:]] == [
        ("void", "cannot void a payment that is voided"),
        ("capture", "cannot capture a payment that is voided"),
    ]
    await lifecycle.assert_balanced(pan)


async def test_void_after_capture_reverses_the_captured_amount(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 30_000)
    await lifecycle.capture(payment, 20_000)
    await lifecycle.void(payment)

    state = await lifecycle.state(payment)
    assert (state["status"], state["hold_status"]) == ("voided", "reversed")
    assert await lifecycle.available(pan) == 100_000
    topic, voided = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_VOIDED
    assert (voided["after_capture"], voided["amount"]) == (True, 20_000)

    await lifecycle.refund(payment, 1_000)
    topic, failed = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_OPERATION_FAILED
    assert failed["reason"] == "cannot refund a payment that is voided"
    await lifecycle.assert_balanced(pan)


async def test_partial_refunds_up_to_the_captured_total(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 50_000, capture=True)

    first = await lifecycle.refund(payment, 20_000)
    assert (await lifecycle.state(payment))["status"] == "partially_refunded"
    assert await lifecycle.available(pan) == 100_000 - 30_000
    topic, refunded = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_REFUNDED
    assert (refunded["refund_id"], refunded["amount"]) == (str(first), 20_000)

    over = await lifecycle.refund(payment, 30_001)
    topic, failed = await lifecycle.last(payment)
    assert topic == topics.PAYMENT_OPERATION_FAILED
    assert (failed["operation"], failed["refund_id"], failed["amount"]) == (
        "refund",
        str(over),
        30_001,
    )
    assert failed["reason"] == (
        "refund amount 30001 exceeds the refundable remainder 30000 "
        "(captured 50000, refunded 20000)"
    )

    await lifecycle.void(payment)  # a refunded sale is not reversed
    assert (await lifecycle.last(payment))[1]["reason"] == (
        "cannot void a payment that is partially_refunded"
    )

    await lifecycle.refund(payment, 30_000)
    state = await lifecycle.state(payment)
    assert (state["status"], state["refunded_amount"], state["hold_refunded"]) == (
        "refunded",
        50_000,
        50_000,
    )
    assert await lifecycle.available(pan) == 100_000
    await lifecycle.refund(payment, 1)
    assert (await lifecycle.last(payment))[1]["reason"] == (
        "cannot refund a payment that is refunded"
    )
    await lifecycle.assert_balanced(pan)


async def test_a_repeated_refund_id_does_nothing(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 50_000, capture=True)
    refund_id = await lifecycle.refund(payment, 10_000)
    before = await lifecycle.events(payment)

    await lifecycle.refund(payment, 10_000, refund_id=refund_id)  # new message, same refund

    assert await lifecycle.events(payment) == before
    state = await lifecycle.state(payment)
    assert state["refunded_amount"] == 10_000
    assert await lifecycle.available(pan) == 100_000 - 40_000
    count = await lifecycle.pool.fetchval(
        "SELECT count(*) FROM refunds WHERE payment_id = $1", payment
    )
    assert count == 1


async def test_a_redelivered_command_is_applied_once(lifecycle: Lifecycle) -> None:
    pan = await lifecycle.card()
    payment = await lifecycle.pay(pan, 20_000)
    envelope = await lifecycle.deliver(
        topics.CAPTURE_PAYMENT,
        CapturePayment(
            payment_id=payment,
            merchant_id=MERCHANT,
            amount=5_000,
            currency="TRY",
            requested_at=lifecycle.clock(),
        ),
    )
    handler = idempotent(lifecycle.pool, "authorization", lifecycle.handlers.table())
    await handler(topics.CAPTURE_PAYMENT, envelope)  # the same message again

    assert await lifecycle.topics_of(payment) == [
        topics.PAYMENT_AUTHORIZED,
        topics.PAYMENT_CAPTURED,
    ]
