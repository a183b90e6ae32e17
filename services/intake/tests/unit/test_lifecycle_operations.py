"""Which merchant operations each status allows (capture, void with the cut-off, refund)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from intake.domain.payment import (
    AmountTooLarge,
    OperationNotAllowed,
    PaymentState,
    PaymentStatus,
    check_capture,
    check_refund,
    check_void,
)
from sanalpos_common.business_day import closes_at

S = PaymentStatus


def state(status: PaymentStatus, **kw: object) -> PaymentState:
    base: dict[str, object] = {"amount": 1000, "is_preauth": True, "captured_amount": 0}
    base.update(kw)
    return PaymentState(status=status, **base)  # type: ignore[arg-type]


def test_capture_only_an_authorized_preauth_up_to_its_amount() -> None:
    check_capture(state(S.AUTHORIZED), 1000)
    check_capture(state(S.AUTHORIZED), 1)
    with pytest.raises(AmountTooLarge) as too_much:
        check_capture(state(S.AUTHORIZED), 1001)
    assert too_much.value.available == 1000
    with pytest.raises(OperationNotAllowed) as sale:
        check_capture(state(S.AUTHORIZED, is_preauth=False), 10)
    assert sale.value.current_state == "authorized"


@pytest.mark.parametrize("status", [s for s in PaymentStatus if s is not S.AUTHORIZED])
def test_capture_refused_in_every_other_state_naming_it(status: PaymentStatus) -> None:
    with pytest.raises(OperationNotAllowed) as refused:
        check_capture(state(status), 10)
    assert refused.value.current_state == status.value
    assert status.value in refused.value.detail


def test_a_second_capture_waits_for_the_first() -> None:
    with pytest.raises(OperationNotAllowed, match="already in progress"):
        check_capture(state(S.AUTHORIZED, pending_operation="capture"), 10)


# A capture at 10:00 Istanbul time (07:00 UTC); the merchant's cut-off is 18:00 local.
CAPTURED_AT = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
CLOSES = closes_at(CAPTURED_AT, "Europe/Istanbul", time(18, 0))


def test_cut_off_is_the_local_evening_of_the_capture_day() -> None:
    closes = CLOSES
    assert closes == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def test_void_of_a_capture_before_and_after_the_cut_off() -> None:
    captured = state(S.CAPTURED, captured_amount=1000, is_preauth=False)
    check_void(captured, CLOSES - timedelta(seconds=1), CLOSES)
    with pytest.raises(OperationNotAllowed, match="refund it instead") as late:
        check_void(captured, CLOSES, CLOSES)
    assert late.value.current_state == "captured"
    with pytest.raises(OperationNotAllowed, match="refund it instead"):
        check_void(captured, CLOSES - timedelta(hours=1), None)  # capture time unknown


def test_void_before_capture_is_always_allowed() -> None:
    check_void(state(S.AUTHORIZED), CLOSES + timedelta(days=3), None)


@pytest.mark.parametrize(
    "status",
    [S.PENDING, S.REQUIRES_ACTION, S.DECLINED, S.VOIDED, S.EXPIRED, S.SETTLED, S.REFUNDED],
)
def test_void_refused_elsewhere(status: PaymentStatus) -> None:
    with pytest.raises(OperationNotAllowed) as refused:
        check_void(state(status), CAPTURED_AT, CLOSES)
    assert refused.value.current_state == status.value


def test_settled_or_refunded_payment_suggests_a_refund() -> None:
    with pytest.raises(OperationNotAllowed, match="refund it instead"):
        check_void(state(S.SETTLED, captured_amount=10), CAPTURED_AT, CLOSES)


def test_refunds_up_to_the_captured_amount_counting_pending_ones() -> None:
    captured = state(S.CAPTURED, captured_amount=700)
    check_refund(captured, 700, committed=0)
    check_refund(state(S.PARTIALLY_REFUNDED, captured_amount=700), 300, committed=400)
    with pytest.raises(AmountTooLarge) as over:
        check_refund(state(S.PARTIALLY_REFUNDED, captured_amount=700), 301, committed=400)
    assert over.value.available == 300


@pytest.mark.parametrize(
    "status",
    [S.PENDING, S.REQUIRES_ACTION, S.AUTHORIZED, S.DECLINED, S.VOIDED, S.EXPIRED, S.REFUNDED],
)
def test_refund_refused_before_capture_and_after_full_refund(status: PaymentStatus) -> None:
    with pytest.raises(OperationNotAllowed) as refused:
        check_refund(state(status, captured_amount=700), 1, committed=0)
    assert refused.value.current_state == status.value


def test_refund_allowed_after_settlement() -> None:
    check_refund(state(S.SETTLED, captured_amount=700), 100, committed=0)


def test_a_capture_applied_before_its_authorization_still_shows_the_auth_code() -> None:
    import uuid

    from intake.domain.outcomes import event_details
    from sanalpos_common.schemas.events import PaymentCaptured

    captured = PaymentCaptured(
        payment_id=uuid.uuid4(),
        merchant_id="mer_demo",
        amount=1000,
        currency="TRY",
        installments=1,
        auth_code="A1B2C3",
        authorized_amount=1000,
    )
    assert event_details(captured)["auth_code"] == "A1B2C3"
