import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from authorization.domain.lifecycle import (
    Authorization,
    AuthorizationStatus,
    OperationRefused,
    VoidPlan,
    check_capture,
    check_refund,
    plan_void,
    status_after_refund,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
S = AuthorizationStatus
PREAUTH = Authorization(
    payment_id=uuid.uuid4(),
    merchant_id="mer_1",
    amount=10_000,
    currency="TRY",
    status=S.AUTHORIZED,
    auth_code="A1B2C3",
    installments=1,
    expires_at=NOW + timedelta(days=7),
)
CAPTURED = replace(PREAUTH, status=S.CAPTURED, captured_amount=8_000, expires_at=None)


def refusal(call: object, *args: object) -> str:
    with pytest.raises(OperationRefused) as refused:
        call(*args)  # type: ignore[operator]
    return refused.value.reason


def test_an_open_pre_authorization_captures_up_to_its_hold() -> None:
    check_capture(PREAUTH, 10_000, "TRY", NOW)
    check_capture(PREAUTH, 1, "TRY", NOW)
    assert refusal(check_capture, PREAUTH, 10_001, "TRY", NOW) == (
        "capture amount 10001 exceeds the authorized amount 10000"
    )
    assert refusal(check_capture, PREAUTH, 100, "EUR", NOW) == (
        "currency EUR does not match the payment's TRY"
    )


@pytest.mark.parametrize("status", [s for s in S if s is not S.AUTHORIZED])
def test_capture_needs_an_open_pre_authorization(status: AuthorizationStatus) -> None:
    state = replace(PREAUTH, status=status)
    assert refusal(check_capture, state, 100, "TRY", NOW) == (
        f"cannot capture a payment that is {status.value}"
    )


def test_a_pre_authorization_lapses_at_its_expiry() -> None:
    deadline = PREAUTH.expires_at
    assert deadline is not None
    assert not PREAUTH.is_past_expiry(deadline - timedelta(microseconds=1))
    assert PREAUTH.is_past_expiry(deadline)
    assert refusal(check_capture, PREAUTH, 100, "TRY", deadline) == (
        "cannot capture a pre-authorization past its expiry"
    )
    assert not CAPTURED.is_past_expiry(deadline + timedelta(days=365))


def test_void_releases_before_capture_and_reverses_after() -> None:
    assert plan_void(PREAUTH) == VoidPlan(after_capture=False, amount=10_000)
    assert plan_void(CAPTURED) == VoidPlan(after_capture=True, amount=8_000)


@pytest.mark.parametrize(
    "status", [S.DECLINED, S.VOIDED, S.EXPIRED, S.PARTIALLY_REFUNDED, S.REFUNDED]
)
def test_void_is_refused_once_final_or_refunded(status: AuthorizationStatus) -> None:
    assert refusal(plan_void, replace(CAPTURED, status=status)) == (
        f"cannot void a payment that is {status.value}"
    )


def test_refunds_add_up_to_the_captured_amount_at_most() -> None:
    check_refund(CAPTURED, 8_000, "TRY")
    partly = replace(CAPTURED, status=S.PARTIALLY_REFUNDED, refunded_amount=5_000)
    assert partly.refundable == 3_000
    check_refund(partly, 3_000, "TRY")
    assert refusal(check_refund, partly, 3_001, "TRY") == (
        "refund amount 3001 exceeds the refundable remainder 3000 (captured 8000, refunded 5000)"
    )
    assert refusal(check_refund, CAPTURED, 1, "USD") == (
        "currency USD does not match the payment's TRY"
    )
    assert status_after_refund(CAPTURED, 2_000) is S.PARTIALLY_REFUNDED
    assert status_after_refund(partly, 3_000) is S.REFUNDED


@pytest.mark.parametrize("status", [S.AUTHORIZED, S.DECLINED, S.VOIDED, S.EXPIRED, S.REFUNDED])
def test_refund_needs_a_capture_with_something_left(status: AuthorizationStatus) -> None:
    assert refusal(check_refund, replace(CAPTURED, status=status), 1, "TRY") == (
        f"cannot refund a payment that is {status.value}"
    )
