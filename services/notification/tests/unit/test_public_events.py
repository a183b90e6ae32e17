"""The explicit mapping from internal events to the public webhook contract."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from notification.domain.public_events import (
    PUBLIC_EVENT_MAPPINGS,
    header_of,
    public_decline,
    public_event,
    webhook_body,
)
from notification.domain.signing import generate_secret
from notification.domain.webhooks import Endpoint, OutcomeEvent, plan_deliveries
from sanalpos_common import topics
from sanalpos_common.schemas import events as internal
from sanalpos_common.schemas.codec import decode, encode, new_envelope
from sanalpos_common.schemas.events import event_type
from sanalpos_common.schemas.export import WEBHOOK_SCHEMA_DIR
from sanalpos_common.schemas.webhooks import WEBHOOK_EVENTS, DeclineCode, schema_file_name

PAYMENT_ID = uuid.UUID("0b8a5a56-8a44-4f57-8f2d-0d3f4d2f3a11")
REFUND_ID = uuid.UUID("3f2b8c1e-5d4a-4e6f-8a9b-0c1d2e3f4a5b")
LEDGER_ID = uuid.UUID("77777777-7777-4777-8777-777777777777")
BATCH_ID = uuid.UUID("9d1c3e55-0f7a-4b2e-8c61-2a4f6b8d0e13")
HEADER = header_of(uuid.uuid4(), datetime(2026, 12, 2, 9, 30, tzinfo=UTC))
BASE = {"payment_id": PAYMENT_ID, "merchant_id": "m-1"}
CIPHERTEXT = "sp1.pan.7.SECRETCIPHERTEXT.xyz"


def _map(payload: BaseModel) -> Any:
    return public_event(
        event_type(internal.topic_of(payload)), payload.model_dump(mode="json"), HEADER
    )


def _authorized(capture: bool) -> internal.PaymentAuthorized:
    return internal.PaymentAuthorized(
        **BASE,
        amount=500,
        currency="TRY",
        auth_code="X1",
        response_code="00",
        installments=2,
        capture=capture,
    )


def _declined(by: str = "issuer", code: str = "51", reason: str = "insufficient funds") -> Any:
    return internal.PaymentDeclined(
        **BASE, amount=500, currency="TRY", response_code=code, reason=reason, declined_by=by
    )


def _failed(operation: internal.PaymentOperation, refund_id: uuid.UUID | None = None) -> Any:
    return internal.PaymentOperationFailed(
        **BASE, operation=operation, refund_id=refund_id, amount=300, reason="cannot do it"
    )


# One sample per internal outcome (and per branch of a mapping), with the public type and
# data it must become: the whole contract of the mapping, field by field.
CASES: list[tuple[BaseModel, str, dict[str, Any]]] = [
    (
        _authorized(capture=True),
        "payment.succeeded",
        {
            "amount": 500,
            "currency": "TRY",
            "installments": 2,
            "auth_code": "X1",
            "authentication": None,
        },
    ),
    (
        _authorized(capture=False),
        "payment.authorized",
        {
            "amount": 500,
            "currency": "TRY",
            "installments": 2,
            "auth_code": "X1",
            "authentication": None,
        },
    ),
    (
        internal.PaymentCaptured(
            **BASE,
            amount=400,
            currency="TRY",
            installments=2,
            auth_code="X1",
            authorized_amount=500,
        ),
        "payment.captured",
        {
            "amount": 400,
            "authorized_amount": 500,
            "currency": "TRY",
            "installments": 2,
            "auth_code": "X1",
        },
    ),
    (
        _declined(),
        "payment.failed",
        {
            "amount": 500,
            "currency": "TRY",
            "decline_code": "insufficient_funds",
            "response_code": "51",
            "decline_reason": "insufficient funds",
            "authentication": None,
        },
    ),
    (
        internal.PaymentActionRequired(
            **BASE, amount=500, currency="TRY", action=internal.ActionRequired.THREE_DS, score=87
        ),
        "payment.requires_action",
        {
            "amount": 500,
            "currency": "TRY",
            "next_action": "three_d_secure",
            "next_action_url": None,
            "expires_at": None,
        },
    ),
    (
        internal.PaymentVoided(**BASE, amount=500, currency="TRY", after_capture=True),
        "payment.voided",
        {"amount": 500, "currency": "TRY", "after_capture": True},
    ),
    (
        internal.PaymentExpired(
            **BASE, amount=500, currency="TRY", expired_at=datetime(2026, 12, 9, tzinfo=UTC)
        ),
        "payment.expired",
        {"amount": 500, "currency": "TRY", "expired_at": "2026-12-09T00:00:00Z"},
    ),
    (
        internal.PaymentSettled(
            **BASE,
            gross_amount=10_000,
            fee_amount=179,
            net_amount=9_821,
            currency="TRY",
            ledger_transaction_id=LEDGER_ID,
            batch_id=BATCH_ID,
            batch_date=date(2026, 12, 2),
        ),
        "payment.settled",
        {
            "gross_amount": 10_000,
            "fee_amount": 179,
            "net_amount": 9_821,
            "currency": "TRY",
            "batch_id": str(BATCH_ID),
            "batch_date": "2026-12-02",
        },
    ),
    (
        internal.PaymentRefunded(
            **BASE, refund_id=REFUND_ID, amount=200, currency="TRY", reason="returned goods"
        ),
        "refund.succeeded",
        {"refund_id": str(REFUND_ID), "amount": 200, "currency": "TRY", "reason": "returned goods"},
    ),
    (
        _failed(internal.PaymentOperation.CAPTURE),
        "payment.capture_failed",
        {"amount": 300, "failure_reason": "cannot do it"},
    ),
    (
        _failed(internal.PaymentOperation.VOID),
        "payment.void_failed",
        {"failure_reason": "cannot do it"},
    ),
    (
        _failed(internal.PaymentOperation.REFUND, REFUND_ID),
        "refund.failed",
        {"refund_id": str(REFUND_ID), "amount": 300, "failure_reason": "cannot do it"},
    ),
]


@pytest.mark.parametrize(("payload", "public_type", "data"), CASES, ids=[c[1] for c in CASES])
def test_each_internal_outcome_maps_to_exactly_its_public_fields(
    payload: BaseModel, public_type: str, data: dict[str, Any]
) -> None:
    event = _map(payload)
    document = json.loads(webhook_body(event))
    assert document["type"] == public_type
    assert document["data"] == {"payment_id": str(PAYMENT_ID), "merchant_id": "m-1", **data}
    assert (document["id"], document["created_at"]) == (HEADER.id, "2026-12-02T09:30:00Z")
    assert WEBHOOK_EVENTS[public_type].model_validate(document) == event
    schema = json.loads((WEBHOOK_SCHEMA_DIR / schema_file_name(public_type)).read_text())
    jsonschema.validate(document, schema)


def test_every_outcome_topic_is_mapped_and_every_public_type_is_reachable() -> None:
    assert set(PUBLIC_EVENT_MAPPINGS) == {
        event_type(t)
        for t in (*topics.OUTCOME_TOPICS, topics.PAYOUT_UPDATED, topics.DISPUTE_UPDATED)
    }
    assert {case[1] for case in CASES} | {
        "payout.paid",
        "payout.failed",
        "dispute.created",
        "dispute.won",
        "dispute.lost",
    } == set(WEBHOOK_EVENTS)


def test_internal_events_without_a_mapping_send_nothing() -> None:
    card = internal.EncryptedCard(
        pan_ciphertext=CIPHERTEXT,
        cvc_ciphertext=CIPHERTEXT,
        fingerprint="fp1_x",
        bin="411111",
        last4="1111",
        exp_month=12,
        exp_year=2031,
        brand="visa",
    )
    initiated = internal.PaymentInitiated(
        **BASE,
        amount=100,
        currency="TRY",
        capture=True,
        installments=1,
        card=card,
        created_at=datetime.now(UTC),
    )
    scored = internal.PaymentScored(
        **BASE,
        score=42,
        decision=internal.FraudDecision.APPROVE,
        reasons=("velocity",),
        amount=100,
        currency="TRY",
        capture=True,
        installments=1,
        card=card,
    )
    assert _map(initiated) is None and _map(scored) is None
    assert public_event("payment.something-new", {}, HEADER) is None


def test_fraud_score_declined_by_ledger_ids_and_card_data_never_reach_a_body() -> None:
    fraud_declined = _declined(by="fraud", code="59", reason="declined in fraud review")
    endpoint = Endpoint(uuid.uuid4(), "m-1", "https://merchant.example/h", generate_secret())
    bodies = []
    for payload in [fraud_declined, *(case[0] for case in CASES)]:
        envelope = new_envelope(
            internal.topic_of(payload), payload, correlation_id=PAYMENT_ID, producer="t"
        )
        decoded = decode(internal.topic_of(payload), encode(envelope))
        bodies += [d.body for d in plan_deliveries(OutcomeEvent.from_envelope(decoded), [endpoint])]
    assert len(bodies) == len(CASES) + 1
    for body in bodies:
        for leak in ("score", "declined_by", '"fraud"', "fraud review", str(LEDGER_ID)):
            assert leak not in body, (leak, body)
        assert "ciphertext" not in body and "card" not in body and "fingerprint" not in body
    failed = json.loads(bodies[0])["data"]
    assert (failed["decline_code"], failed["decline_reason"]) == (
        "suspected_fraud",
        "suspected fraud",
    )


def test_a_payload_with_fields_the_mapping_does_not_know_is_refused() -> None:
    # Card data slipped into an internal event is not passed on: the payload fails validation.
    data = {**_declined().model_dump(mode="json"), "card": {"pan_ciphertext": CIPHERTEXT}}
    with pytest.raises(ValidationError, match="card"):
        public_event("payment.declined", data, HEADER)


def test_unknown_response_code_is_a_generic_decline() -> None:
    assert public_decline("05") == (DeclineCode.DO_NOT_HONOR, "do not honour")
    assert public_decline("N7")[0] is DeclineCode.SECURITY_CODE_EXPIRED
    assert public_decline("96") == (DeclineCode.GENERIC_DECLINE, "declined")
    document = json.loads(webhook_body(_map(_declined(code="96", reason="system malfunction"))))
    assert document["data"]["decline_code"] == "generic_decline"
    assert "malfunction" not in json.dumps(document)


def test_a_failed_refund_must_name_its_refund() -> None:
    with pytest.raises(ValueError, match="refund_id"):
        _map(_failed(internal.PaymentOperation.REFUND, refund_id=None))


CAVV = "Q0FWVi1saWtlLXZhbHVlLW5vdC1mb3ItbWVyY2hhbnRz"


def _authentication(status: str, eci: str, shift: bool) -> internal.ThreeDSAuthentication:
    return internal.ThreeDSAuthentication.model_validate(
        {
            "status": status,
            "flow": "challenge",
            "eci": eci,
            "authentication_value": CAVV if shift else None,
            "liability_shift": shift,
            "ds_transaction_id": uuid.uuid4(),
        }
    )


def test_three_d_secure_reaches_the_webhooks_without_its_cavv() -> None:
    asked = internal.PaymentActionRequired(
        **BASE,
        amount=500,
        currency="TRY",
        action=internal.ActionRequired.THREE_DS,
        score=10,
        next_action_url="https://acs.example/acs/challenges/ch_1",
        expires_at=datetime(2026, 12, 2, 9, 40, tzinfo=UTC),
    )
    data = json.loads(webhook_body(_map(asked)))["data"]
    assert (data["next_action"], data["next_action_url"], data["expires_at"]) == (
        "three_d_secure",
        "https://acs.example/acs/challenges/ch_1",
        "2026-12-02T09:40:00Z",
    )

    authorized = _authorized(capture=True).model_copy(
        update={"authentication": _authentication("authenticated", "05", True)}
    )
    body = webhook_body(_map(authorized))
    assert json.loads(body)["data"]["authentication"] == {
        "status": "authenticated",
        "flow": "challenge",
        "eci": "05",
        "liability_shift": True,
    }
    assert CAVV not in body and "ds_transaction_id" not in body

    declined = internal.PaymentDeclined(
        **BASE,
        amount=500,
        currency="TRY",
        response_code="N8",
        reason="3-D Secure failed: wrong code, no attempts left",
        declined_by="authentication",
        authentication=_authentication("failed", "07", False),
    )
    failed = json.loads(webhook_body(_map(declined)))["data"]
    assert failed["decline_code"] == "authentication_failed"
    assert failed["decline_reason"] == "3-D Secure authentication failed"
    assert failed["authentication"]["status"] == "failed"
    assert failed["authentication"]["liability_shift"] is False
    assert "wrong code" not in json.dumps(failed)  # internal reasons stay behind


def _dispute(status: internal.DisputeStatus, version: int, **extra: Any) -> Any:
    return internal.DisputeUpdated(
        dispute_id=uuid.UUID("7b0c2f7e-4c5d-4a1b-9e8f-0a1b2c3d4e5f"),
        **BASE,
        amount=4_000,
        currency="TRY",
        reason_code="13.1",
        reason="merchandise not received",
        status=status,
        respond_by=datetime(2026, 12, 9, 9, 30, tzinfo=UTC),
        fee=15_000,
        held=0 if status in {internal.DisputeStatus.WON, internal.DisputeStatus.LOST} else 4_000,
        moves=(internal.DisputeLedgerMove(kind="dispute_hold", amount=-4_000, batch_id=BATCH_ID),),
        created_at=datetime(2026, 12, 2, 9, 30, tzinfo=UTC),
        updated_at=datetime(2026, 12, 2, 9, 30, tzinfo=UTC),
        version=version,
        **extra,
    )


DISPUTE_DATA = {
    "dispute_id": "7b0c2f7e-4c5d-4a1b-9e8f-0a1b2c3d4e5f",
    "payment_id": str(PAYMENT_ID),
    "merchant_id": "m-1",
    "amount": 4_000,
    "currency": "TRY",
    "reason_code": "13.1",
    "reason": "merchandise not received",
    "respond_by": "2026-12-09T09:30:00Z",
    "fee": 15_000,
}


@pytest.mark.parametrize(
    ("payload", "public_type", "data"),
    [
        (_dispute(internal.DisputeStatus.NEEDS_RESPONSE, 1), "dispute.created", DISPUTE_DATA),
        (
            _dispute(internal.DisputeStatus.WON, 3, outcome_reason="issuer_won"),
            "dispute.won",
            {**DISPUTE_DATA, "outcome_reason": "issuer_won"},
        ),
        (
            _dispute(internal.DisputeStatus.LOST, 2, outcome_reason="no_response"),
            "dispute.lost",
            {**DISPUTE_DATA, "outcome_reason": "no_response"},
        ),
    ],
)
def test_a_dispute_maps_to_its_public_fields_only(
    payload: BaseModel, public_type: str, data: dict[str, Any]
) -> None:
    document = json.loads(webhook_body(_map(payload)))
    assert (document["type"], document["data"]) == (public_type, data)
    schema = json.loads((WEBHOOK_SCHEMA_DIR / schema_file_name(public_type)).read_text())
    jsonschema.validate(document, schema)
    assert "moves" not in json.dumps(document) and "held" not in document["data"]


def test_an_answered_dispute_under_review_is_not_told() -> None:
    from notification.domain.public_events import dispute_is_told

    review = _dispute(internal.DisputeStatus.UNDER_REVIEW, 2, response="evidence")
    assert not dispute_is_told(review)
    assert dispute_is_told(_dispute(internal.DisputeStatus.NEEDS_RESPONSE, 1))
    with pytest.raises(ValueError, match="no public event"):
        _map(review)
