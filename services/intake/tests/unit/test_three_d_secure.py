"""3-D Secure in intake's read model and merchant setting: what the outcome events record,
what the payment view shows, how the status moves on from requires_action, and the
"always 3-D Secure" merchant setting."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from intake.domain.merchant import InvalidMerchantField, check_field
from intake.domain.outcomes import event_details, replay
from intake.domain.payment import PaymentStatus, derive_status
from intake.entrypoints.http.app import build_app
from intake.entrypoints.http.merchant_schemas import CreateMerchant, UpdateMerchant
from intake.service_layer.three_d_secure import three_d_secure_for
from intake.service_layer.views import authentication_view, next_action_view
from sanalpos_common.schemas.events import (
    ActionRequired,
    AuthenticationStatus,
    PaymentActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    ThreeDSAuthentication,
    ThreeDSRequest,
)

PAYMENT = uuid.uuid4()
REF: dict[str, Any] = {
    "payment_id": PAYMENT,
    "merchant_id": "mer_3ds",
    "amount": 12_500,
    "currency": "TRY",
}
EXPIRES = datetime(2026, 12, 3, 9, 10, tzinfo=UTC)
ASKED = PaymentActionRequired(
    **REF,
    action=ActionRequired.THREE_DS,
    score=12,
    next_action_url="https://acs.example/acs/challenges/ch_x",
    expires_at=EXPIRES,
)
AUTHENTICATED = ThreeDSAuthentication(
    status=AuthenticationStatus.AUTHENTICATED,
    flow="challenge",
    eci="05",
    authentication_value="AAABBEg0VhI0VniQEjRWAAAAAAA=",
    liability_shift=True,
    ds_transaction_id=uuid.uuid4(),
)
AUTHORIZED = PaymentAuthorized(
    **REF,
    auth_code="A1B2C3",
    response_code="00",
    installments=1,
    capture=True,
    authentication=AUTHENTICATED,
)
CAPTURED = PaymentCaptured(**REF, installments=1, auth_code="A1B2C3", authorized_amount=12_500)
DECLINED = PaymentDeclined(
    **REF,
    response_code="N8",
    reason="3-D Secure failed: wrong code, no attempts left",
    declined_by="authentication",
    authentication=ThreeDSAuthentication(
        status=AuthenticationStatus.FAILED, flow="challenge", eci="07"
    ),
)


def test_the_action_required_event_records_the_next_action() -> None:
    details = event_details(ASKED)
    assert details["next_action_url"] == "https://acs.example/acs/challenges/ch_x"
    assert datetime.fromisoformat(details["next_action_expires_at"]) == EXPIRES
    review = PaymentActionRequired(**REF, action=ActionRequired.REVIEW, score=70)
    assert "next_action_url" not in event_details(review)


def test_outcomes_record_the_authentication_without_its_cavv() -> None:
    details = event_details(AUTHORIZED)
    assert details["authentication"]["eci"] == "05"
    assert details["authentication"]["liability_shift"] is True
    assert "authentication_value" not in details["authentication"]
    assert AUTHENTICATED.authentication_value not in json.dumps(details)
    assert event_details(DECLINED)["authentication"]["status"] == "failed"
    plain = AUTHORIZED.model_copy(update={"authentication": None})
    assert "authentication" not in event_details(plain)


@pytest.mark.parametrize(
    ("later", "status"),
    [
        ((AUTHORIZED,), PaymentStatus.AUTHORIZED),
        ((AUTHORIZED, CAPTURED), PaymentStatus.CAPTURED),
        ((CAPTURED,), PaymentStatus.CAPTURED),
        ((DECLINED,), PaymentStatus.DECLINED),
    ],
)
def test_requires_action_moves_on_to_authorized_captured_or_declined(
    later: tuple[Any, ...], status: PaymentStatus
) -> None:
    assert derive_status(replay([ASKED])) is PaymentStatus.REQUIRES_ACTION
    assert derive_status(replay([ASKED, *later])) is status
    assert derive_status(replay([*reversed(later), ASKED])) is status  # any order


def test_the_next_action_is_shown_only_while_the_payment_requires_it() -> None:
    row = {
        "status": "requires_action",
        "next_action_url": ASKED.next_action_url,
        "next_action_expires_at": EXPIRES,
    }
    shown = next_action_view(row)
    assert shown is not None
    assert shown.model_dump(mode="json") == {
        "type": "redirect_to_url",
        "url": ASKED.next_action_url,
        "expires_at": "2026-12-03T09:10:00Z",
    }
    assert next_action_view({**row, "status": "authorized"}) is None
    assert next_action_view({"status": "requires_action", "next_action_url": None}) is None


def test_the_authentication_view_shows_status_flow_eci_and_liability_only() -> None:
    stored = json.dumps(event_details(AUTHORIZED)["authentication"])
    shown = authentication_view({"authentication": stored})
    assert shown is not None
    assert shown.model_dump() == {
        "status": "authenticated",
        "flow": "challenge",
        "eci": "05",
        "liability_shift": True,
    }
    assert authentication_view({"authentication": None}) is None


def test_the_merchant_setting_makes_every_payment_required() -> None:
    assert three_d_secure_for(ThreeDSRequest.AUTOMATIC, True) is ThreeDSRequest.REQUIRED
    assert three_d_secure_for(ThreeDSRequest.REQUIRED, False) is ThreeDSRequest.REQUIRED
    assert three_d_secure_for(ThreeDSRequest.AUTOMATIC, False) is ThreeDSRequest.AUTOMATIC
    assert check_field("always_three_d_secure", True) is True
    with pytest.raises(InvalidMerchantField):
        check_field("always_three_d_secure", "yes")
    assert CreateMerchant(name="Moda").always_three_d_secure is False
    assert UpdateMerchant(always_three_d_secure=False).changes() == {"always_three_d_secure": False}
    with pytest.raises(ValueError, match="always_three_d_secure"):
        UpdateMerchant.model_validate({"always_three_d_secure": "true"})


def test_the_payment_view_documents_next_action_and_authentication() -> None:
    schemas = build_app().openapi()["components"]["schemas"]
    payment = schemas["PaymentOut"]["properties"]
    for name in ("next_action", "authentication"):
        assert payment[name]["description"], name
        assert payment[name]["examples"][0], name
    for model in ("NextActionOut", "AuthenticationOut"):
        for name, prop in schemas[model]["properties"].items():
            assert prop.get("description") and prop.get("examples"), f"{model}.{name}"
    assert payment["next_action"]["examples"][0]["type"] == "redirect_to_url"
