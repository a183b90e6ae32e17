from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel

from notification.domain.public_events import PUBLIC_EVENT_MAPPINGS
from notification.domain.signing import InvalidSecret, generate_secret, secret_bytes
from notification.domain.webhooks import (
    Endpoint,
    InvalidEndpoint,
    OutcomeEvent,
    delivery_id,
    plan_deliveries,
    static_endpoint_id,
    validate_endpoint,
)
from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode, encode, new_envelope
from sanalpos_common.schemas.events import (
    EncryptedCard,
    FraudDecision,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentScored,
    event_type,
)

PAYMENT_ID = uuid.UUID("0b8a5a56-8a44-4f57-8f2d-0d3f4d2f3a11")


def _captured_event(merchant_id: str = "m-1") -> OutcomeEvent:
    payload = PaymentCaptured(
        payment_id=PAYMENT_ID,
        merchant_id=merchant_id,
        amount=12_345,
        currency="TRY",
        installments=3,
        auth_code="A1B2C3",
    )
    envelope = new_envelope(
        topics.PAYMENT_CAPTURED, payload, correlation_id=PAYMENT_ID, producer="test"
    )
    # Through the real codec, as the consumer would see it.
    decoded = decode(topics.PAYMENT_CAPTURED, encode(envelope))
    return OutcomeEvent(
        message_id=decoded.message_id,
        event_type=event_type(topics.PAYMENT_CAPTURED),
        occurred_at=decoded.occurred_at,
        merchant_id=decoded.payload.merchant_id,
        payment_id=decoded.payload.payment_id,
        data=decoded.payload.model_dump(mode="json"),
    )


def _outcome(topic: str, payload: BaseModel) -> OutcomeEvent:
    envelope = new_envelope(topic, payload, correlation_id=PAYMENT_ID, producer="test")
    return OutcomeEvent.from_envelope(decode(topic, encode(envelope)))


def _scored() -> PaymentScored:
    return PaymentScored(
        payment_id=PAYMENT_ID,
        merchant_id="m-1",
        score=42,
        decision=FraudDecision.APPROVE,
        reasons=("velocity",),
        amount=100,
        currency="TRY",
        capture=True,
        installments=1,
        card=EncryptedCard(
            pan_ciphertext="sp1.pan.1.a.b",
            fingerprint="fp1_x",
            bin="411111",
            last4="1111",
            exp_month=12,
            exp_year=2031,
            brand="visa",
        ),
    )


def _endpoint(merchant_id: str = "m-1", enabled: bool = True) -> Endpoint:
    return Endpoint(
        endpoint_id=uuid.uuid4(),
        merchant_id=merchant_id,
        url="https://merchant.example/hooks",
        secret=generate_secret(),
        enabled=enabled,
    )


def _body(event: OutcomeEvent) -> str:
    [delivery] = plan_deliveries(event, [_endpoint(event.merchant_id)])
    return delivery.body


def test_body_is_the_public_event() -> None:
    event = _captured_event()
    body = _body(event)
    document = json.loads(body)
    assert set(document) == {"id", "type", "api_version", "created_at", "data"}
    assert document["type"] == "payment.captured"
    assert document["api_version"] == "v1"
    assert document["id"].startswith("evt_")
    assert document["data"] == {
        "payment_id": str(PAYMENT_ID),
        "merchant_id": "m-1",
        "amount": 12_345,
        "currency": "TRY",
        "installments": 3,
        "auth_code": "A1B2C3",
        "authorized_amount": None,
    }
    parsed = datetime.fromisoformat(document["created_at"].replace("Z", "+00:00"))
    assert parsed == event.occurred_at
    assert document["created_at"].endswith("Z")
    assert " " not in body  # compact: the exact bytes that get signed


def test_created_at_is_normalised_to_utc() -> None:
    event = _captured_event()
    istanbul = timezone(timedelta(hours=3))
    aware = replace(event, occurred_at=datetime(2025, 1, 1, 3, 0, tzinfo=istanbul))
    assert json.loads(_body(aware))["created_at"] == "2025-01-01T00:00:00Z"
    naive = replace(event, occurred_at=datetime(2025, 1, 1, 0, 0))
    assert json.loads(_body(naive))["created_at"] == "2025-01-01T00:00:00Z"


def test_event_id_is_stable_per_event_and_shared_by_endpoints() -> None:
    event = _captured_event()
    first, second = plan_deliveries(event, [_endpoint(), _endpoint()])
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]
    assert first.body == plan_deliveries(event, [_endpoint()])[0].body
    other = replace(event, message_id=uuid.uuid4())
    assert json.loads(_body(other))["id"] != json.loads(first.body)["id"]
    assert str(event.message_id) not in first.body  # our message ids stay internal


def test_preauthorization_fields_survive_in_the_public_body() -> None:
    payload = PaymentAuthorized(
        payment_id=PAYMENT_ID,
        merchant_id="m-1",
        amount=500,
        currency="JPY",
        auth_code="X",
        response_code="00",
        installments=1,
        capture=False,
    )
    document = json.loads(_body(_outcome(topics.PAYMENT_AUTHORIZED, payload)))
    assert document["type"] == "payment.authorized"
    assert document["data"] == {
        "payment_id": str(PAYMENT_ID),
        "merchant_id": "m-1",
        "amount": 500,
        "currency": "JPY",
        "installments": 1,
        "auth_code": "X",
        "authentication": None,
    }


def test_event_without_a_public_mapping_makes_no_delivery() -> None:
    assert "payment.scored" not in PUBLIC_EVENT_MAPPINGS
    scored = _outcome(topics.PAYMENT_SCORED, _scored())
    assert plan_deliveries(scored, [_endpoint()]) == []
    unknown = replace(_captured_event(), event_type="payment.something-new")
    assert plan_deliveries(unknown, [_endpoint()]) == []


def test_one_delivery_per_enabled_endpoint_of_the_merchant() -> None:
    event = _captured_event("m-1")
    mine, mine_too = _endpoint("m-1"), _endpoint("m-1")
    disabled, other = _endpoint("m-1", enabled=False), _endpoint("m-2")
    deliveries = plan_deliveries(event, [mine, disabled, other, mine_too])
    assert {d.endpoint_id for d in deliveries} == {mine.endpoint_id, mine_too.endpoint_id}
    assert len({d.body for d in deliveries}) == 1
    assert all(d.payment_id == PAYMENT_ID and d.merchant_id == "m-1" for d in deliveries)
    assert all(d.event_type == "payment.captured" for d in deliveries)
    assert plan_deliveries(event, [other, disabled]) == []


def test_delivery_id_is_stable_and_distinct() -> None:
    message, endpoint = uuid.uuid4(), uuid.uuid4()
    assert delivery_id(message, endpoint) == delivery_id(message, endpoint)
    assert delivery_id(message, endpoint) != delivery_id(message, uuid.uuid4())
    assert delivery_id(message, endpoint) != delivery_id(uuid.uuid4(), endpoint)
    event = _captured_event()
    endpoint_obj = _endpoint()
    first = plan_deliveries(event, [endpoint_obj])[0].id
    assert (
        first
        == plan_deliveries(event, [endpoint_obj])[0].id
        == delivery_id(event.message_id, endpoint_obj.endpoint_id)
    )


def test_static_endpoint_id_is_stable() -> None:
    assert static_endpoint_id("m", "https://a") == static_endpoint_id("m", "https://a")
    assert static_endpoint_id("m", "https://a") != static_endpoint_id("m", "https://b")


def test_signing_keys_include_previous_secret_only_during_grace() -> None:
    now = datetime.now(UTC)
    current, previous = generate_secret(), generate_secret()
    endpoint = Endpoint(
        endpoint_id=uuid.uuid4(),
        merchant_id="m",
        url="https://x",
        secret=current,
        previous_secret=previous,
        previous_secret_expires_at=now + timedelta(hours=1),
    )
    assert endpoint.signing_keys(now) == [secret_bytes(current), secret_bytes(previous)]
    assert endpoint.signing_keys(now + timedelta(hours=2)) == [secret_bytes(current)]


def test_validate_endpoint() -> None:
    secret = generate_secret()
    validate_endpoint("m", "https://merchant.example/hook", secret, allow_http=False)
    validate_endpoint(
        "m", "http://127.0.0.1:8080/hook", secret, allow_http=True, allow_loopback=True
    )
    with pytest.raises(InvalidEndpoint):
        validate_endpoint("m", "http://127.0.0.1:8080/hook", secret, allow_http=True)
    with pytest.raises(InvalidEndpoint):
        validate_endpoint("m", "http://169.254.169.254/", secret, allow_http=True)
    with pytest.raises(InvalidEndpoint):
        validate_endpoint("m", "http://merchant.example/hook", secret, allow_http=False)
    with pytest.raises(InvalidEndpoint):
        validate_endpoint("m", "ftp://merchant.example/hook", secret, allow_http=True)
    with pytest.raises(InvalidEndpoint):
        validate_endpoint("m", "https:///nohost", secret, allow_http=True)
    with pytest.raises(InvalidEndpoint):
        validate_endpoint("m", "https://user:pw@merchant.example/", secret, allow_http=True)
    with pytest.raises(InvalidEndpoint):
        validate_endpoint("", "https://merchant.example/", secret, allow_http=True)
    with pytest.raises(InvalidSecret):
        validate_endpoint("m", "https://merchant.example/", "plain", allow_http=True)
