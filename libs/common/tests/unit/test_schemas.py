import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from sanalpos_common import topics
from sanalpos_common.schemas.codec import UndecodableMessage, decode, encode, new_envelope
from sanalpos_common.schemas.events import (
    DisputeResponded,
    DisputeResponse,
    EncryptedCard,
    PaymentCaptured,
    PaymentInitiated,
)
from sanalpos_common.schemas.export import (
    SCHEMA_DIR,
    WEBHOOK_DOC,
    WEBHOOK_SCHEMA_DIR,
    example_event,
    render_schemas,
    render_webhook_schemas,
    with_webhook_examples,
)
from sanalpos_common.schemas.webhooks import WEBHOOK_EVENTS, schema_file_name


def test_checked_in_json_schemas_match_the_models() -> None:
    """Fails when a contract changes without `make schemas` being run and committed."""
    rendered = render_schemas()
    on_disk = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert sorted(on_disk) == sorted(rendered), "schema files added or missing"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} is stale: run `make schemas`"


def _captured() -> PaymentCaptured:
    return PaymentCaptured(
        payment_id=uuid.uuid4(),
        merchant_id="m",
        amount=100,
        currency="TRY",
        installments=1,
        auth_code="A",
    )


def test_envelope_round_trip_keeps_type_and_ids() -> None:
    payload = _captured()
    cause = uuid.uuid4()
    envelope = new_envelope(
        topics.PAYMENT_CAPTURED,
        payload,
        correlation_id=payload.payment_id,
        producer="t",
        causation_id=cause,
    )
    decoded = decode(topics.PAYMENT_CAPTURED, encode(envelope))
    assert decoded.payload == payload
    assert decoded.type == "payment.captured"
    assert decoded.causation_id == cause
    assert decoded.message_id == envelope.message_id


def test_decode_refuses_wrong_topic_garbage_and_extra_fields() -> None:
    payload = _captured()
    raw = encode(
        new_envelope(
            topics.PAYMENT_CAPTURED, payload, correlation_id=payload.payment_id, producer="t"
        )
    )
    with pytest.raises(UndecodableMessage, match="does not belong"):
        decode(topics.PAYMENT_SETTLED, raw)
    with pytest.raises(UndecodableMessage):
        decode(topics.PAYMENT_CAPTURED, b"{not json")
    with pytest.raises(UndecodableMessage):
        decode(topics.PAYMENT_CAPTURED, None)
    tampered = raw.replace(b'"auth_code"', b'"surprise":1,"auth_code"')
    with pytest.raises(UndecodableMessage, match="surprise"):
        decode(topics.PAYMENT_CAPTURED, tampered)


def test_events_are_frozen_and_money_is_integer() -> None:
    payload = _captured()
    with pytest.raises(ValidationError):
        payload.amount = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        PaymentCaptured(
            payment_id=uuid.uuid4(),
            merchant_id="m",
            amount=1.5,
            currency="TRY",
            installments=1,
            auth_code="A",  # type: ignore[arg-type]
        )


def test_initiated_event_has_no_field_for_a_clear_card_number() -> None:
    card_fields = set(EncryptedCard.model_fields)
    assert "number" not in card_fields and "pan" not in card_fields and "cvc" not in card_fields
    assert "card" in PaymentInitiated.model_fields
    assert datetime.now(UTC)


def test_dead_letter_headers_keep_originals_from_pairs_or_mappings() -> None:
    from types import SimpleNamespace

    from sanalpos_common.messaging.deadletter import dead_letter_headers

    for original in ([("origin", b"x")], {"origin": b"x"}):
        message = SimpleNamespace(topic="t", partition=1, offset=7, headers=original)
        headers = dict(dead_letter_headers(message, "settlement", "bad 4111111111111111", 3))
        assert headers["origin"] == b"x"
        assert headers["dlq.original.offset"] == b"7"
        assert b"4111111111111111" not in headers["dlq.error"]


def test_log_redaction_hides_card_numbers_but_keeps_ids() -> None:
    from sanalpos_common.observability import redact

    assert "4111111111111111" not in redact("pan 4111111111111111 here")
    assert "4111 1111 1111 1111" not in redact("pan 4111 1111 1111 1111")
    message_id = "7dfe1234-5678-9012-3456-8540cf746985"
    assert (
        redact(f"duplicate message {message_id} skipped")
        == f"duplicate message {message_id} skipped"
    )


def test_initiated_event_carries_the_optional_risk_context() -> None:
    from sanalpos_common.schemas.events import GeoPoint, RiskContext

    card = EncryptedCard(
        pan_ciphertext="sp1.pan.1.a.b",
        fingerprint="fp1_x",
        bin="411111",
        last4="1111",
        exp_month=12,
        exp_year=2031,
        brand="visa",
    )
    payment_id = uuid.uuid4()
    context = RiskContext(customer_ip="2001:db8::1", billing_location=GeoPoint(lat=41.0, lon=29.0))
    event = PaymentInitiated(
        payment_id=payment_id,
        merchant_id="m",
        amount=100,
        currency="TRY",
        capture=True,
        installments=1,
        card=card,
        created_at=datetime.now(UTC),
        context=context,
    )
    envelope = new_envelope(
        topics.PAYMENT_INITIATED, event, correlation_id=payment_id, producer="t"
    )
    decoded = decode(topics.PAYMENT_INITIATED, encode(envelope))
    assert decoded.payload.context == context
    without = event.model_copy(update={"context": None})
    legacy = encode(
        new_envelope(topics.PAYMENT_INITIATED, without, correlation_id=payment_id, producer="t")
    )
    assert decode(topics.PAYMENT_INITIATED, legacy).payload.context is None


# ----------------------------------------------------------------------------- public webhooks

WEBHOOK_DOC_TEXT = WEBHOOK_DOC.read_text()


def test_checked_in_webhook_schemas_match_the_models() -> None:
    """The merchants' contract: fails when it changes without `make schemas` being run."""
    rendered = render_webhook_schemas()
    on_disk = {p.name: p.read_text() for p in WEBHOOK_SCHEMA_DIR.glob("*.json")}
    assert sorted(on_disk) == sorted(rendered), "webhook schema files added or missing"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} is stale: run `make schemas`"


def test_webhook_doc_examples_are_current() -> None:
    assert with_webhook_examples(WEBHOOK_DOC_TEXT) == WEBHOOK_DOC_TEXT, "run `make schemas`"


def _documented_examples() -> dict[str, dict[str, Any]]:
    blocks = re.findall(r"```json\n(\{\n.*?\n\})\n```", WEBHOOK_DOC_TEXT, flags=re.DOTALL)
    examples = [json.loads(block) for block in blocks]
    return {example["type"]: example for example in examples}


def test_every_webhook_event_type_is_documented_with_a_valid_example() -> None:
    examples = _documented_examples()
    assert sorted(examples) == sorted(WEBHOOK_EVENTS)
    for event_type, example in examples.items():
        assert f"| `{event_type}` |" in WEBHOOK_DOC_TEXT, f"{event_type} not in the table"
        model = WEBHOOK_EVENTS[event_type]
        assert model.model_validate(example).model_dump(mode="json") == example
        schema = json.loads((WEBHOOK_SCHEMA_DIR / schema_file_name(event_type)).read_text())
        jsonschema.validate(example, schema, format_checker=jsonschema.FormatChecker())


def _property_names(node: Any) -> set[str]:
    if isinstance(node, dict):
        names = (
            set(node.get("properties", {})) if isinstance(node.get("properties"), dict) else set()
        )
        return names.union(*(_property_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_property_names(v) for v in node))
    return set()


def test_no_webhook_field_carries_card_data_or_internal_decisions() -> None:
    forbidden = {"card", "pan", "cvc", "cvv", "fingerprint", "bin", "score", "reasons"}
    forbidden |= {"declined_by", "decision", "ledger_transaction_id", "context"}
    for event_type, model in WEBHOOK_EVENTS.items():
        names = _property_names(model.model_json_schema(mode="serialization"))
        assert not names & forbidden, (event_type, names & forbidden)
        assert not [n for n in names if "ciphertext" in n or "secret" in n], event_type


def test_webhook_events_are_frozen_strict_and_utc() -> None:
    event = example_event(WEBHOOK_EVENTS["payment.captured"])
    with pytest.raises(ValidationError):
        event.id = "evt_0"  # type: ignore[misc]
    document = event.model_dump(mode="json")
    with pytest.raises(ValidationError, match="surprise"):
        type(event).model_validate({**document, "surprise": 1})
    with pytest.raises(ValidationError, match="surprise"):
        type(event).model_validate({**document, "data": {**document["data"], "surprise": 1}})
    with pytest.raises(ValidationError):  # the type is fixed by the model
        type(event).model_validate({**document, "type": "payment.settled"})
    with pytest.raises(ValidationError):  # a time without a zone is ambiguous
        type(event).model_validate({**document, "created_at": "2026-12-02T09:30:00"})
    istanbul = type(event).model_validate({**document, "created_at": "2026-12-02T12:30:00+03:00"})
    assert istanbul.model_dump(mode="json")["created_at"] == "2026-12-02T09:30:00Z"
    assert all(m.model_fields["api_version"].default == "v1" for m in WEBHOOK_EVENTS.values())


def test_a_disputes_answer_never_carries_a_card_number() -> None:
    answer = {
        "dispute_id": uuid.uuid4(),
        "payment_id": uuid.uuid4(),
        "merchant_id": "mer_1",
        "response": DisputeResponse.EVIDENCE,
        "responded_at": datetime.now(UTC),
    }
    assert DisputeResponded(**answer, text="delivered", references=("TR123",)).text == "delivered"
    for bad in ({"text": "card 4111 1111 1111 1111"}, {"references": ("4111-1111-1111-1111",)}):
        with pytest.raises(ValidationError, match="card number"):
            DisputeResponded(**answer, **bad)
