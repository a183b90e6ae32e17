"""Every event type has one topic, and an envelope follows from the payload alone."""

import uuid

import pytest

from sanalpos_common import topics
from sanalpos_common.schemas.codec import decode, encode, envelope_for
from sanalpos_common.schemas.events import (
    EVENT_MODELS,
    MERCHANT_NAMESPACE,
    MerchantUpdated,
    PaymentVoided,
    correlation_id_of,
    topic_of,
)


def test_each_event_type_travels_on_exactly_one_topic() -> None:
    assert len(set(EVENT_MODELS.values())) == len(EVENT_MODELS)
    for topic, model in EVENT_MODELS.items():
        assert topic_of(model) == topic


def test_an_unregistered_type_is_refused() -> None:
    with pytest.raises(KeyError, match="not a registered event type"):
        topic_of(uuid.UUID)  # type: ignore[arg-type]


def test_envelope_from_payload_names_topic_type_correlation_and_cause() -> None:
    payment_id, cause = uuid.uuid4(), uuid.uuid4()
    voided = PaymentVoided(
        payment_id=payment_id, merchant_id="mer_x", amount=100, currency="TRY", after_capture=False
    )
    envelope = envelope_for(voided, producer="authorization", causation_id=cause)
    assert envelope.type == "payment.voided"
    assert envelope.correlation_id == payment_id
    assert envelope.causation_id == cause
    assert envelope.producer == "authorization"
    assert decode(topics.PAYMENT_VOIDED, encode(envelope)).payload == voided


def test_merchant_events_correlate_by_merchant() -> None:
    updated = MerchantUpdated(
        merchant_id="mer_a",
        name="A",
        settlement_currency="TRY",
        time_zone="Europe/Istanbul",
        cutoff_time="23:59",
        fee_plan="standard",
        version=1,
    )
    assert correlation_id_of(updated) == uuid.uuid5(MERCHANT_NAMESPACE, "mer_a")
