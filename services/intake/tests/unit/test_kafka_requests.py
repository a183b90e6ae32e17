"""Kafka requests: parsing and refusals (no database), and what a dead letter may keep."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from intake.domain.request_signing import RequestHeaders
from intake.entrypoints.kafka.consumer import (
    KafkaEntrySettings,
    arrival_s,
    card_data_in,
    delivery_id,
    signing_keyring,
    without_card_data,
)
from intake.entrypoints.kafka.messages import parse_request
from intake.service_layer.problems import Refused
from intake.service_layer.request_answers import Reply

PAN = "4111111111111111"


def record(value: bytes | None, headers: list[tuple[str, bytes]] | None = None, **kw: Any) -> Any:
    fields: dict[str, Any] = {
        "topic": "merchant.payment-requests.v1",
        "partition": 0,
        "offset": 7,
        "timestamp": 1_700_000_000_000,
        "timestamp_type": 1,
        "key": b"k",
        "value": value,
        "checksum": None,
        "serialized_key_size": 1,
        "serialized_value_size": len(value or b""),
        "headers": headers or [],
    }
    fields.update(kw)
    return ConsumerRecord(**fields)


def rejection(value: bytes) -> dict[str, Any]:
    """The problem the request is refused with, as replied."""
    with pytest.raises(Refused) as caught:
        parse_request(value)
    return caught.value.problem.document()


def test_a_create_request_parses() -> None:
    parsed = parse_request(b'{"operation": "create", "body": {"amount": 1}}')
    assert parsed.operation == "create" and parsed.body == {"amount": 1}


@pytest.mark.parametrize("value", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"'])
def test_malformed_values_are_400(value: bytes) -> None:
    refused = rejection(value)
    assert refused["status"] == 400
    assert refused["type"].endswith("/malformed-request")


@pytest.mark.parametrize(
    ("document", "fields"),
    [
        ({"operation": "pay", "body": {}}, ["operation"]),
        ({"body": {}}, ["operation"]),
        ({"operation": "create", "body": {}, "merchant_id": "x"}, ["merchant_id"]),
        ({"operation": "capture", "body": {}}, ["payment_id"]),
        ({"operation": "create", "payment_id": str(uuid.uuid4())}, ["payment_id"]),
        ({"operation": "refund", "payment_id": "nope"}, ["payment_id"]),
    ],
)
def test_invalid_requests_are_422_with_field_paths(
    document: dict[str, Any], fields: list[str]
) -> None:
    refused = rejection(json.dumps(document).encode())
    assert refused["status"] == 422
    assert [e["field"] for e in refused["errors"]] == fields


@pytest.mark.parametrize("field", ["card", "cvc"])
def test_card_data_in_clear_is_refused_without_echoing_it(field: str) -> None:
    body = {"card": {"number": PAN, "cvc": "123"}} if field == "card" else {"cvc": "123"}
    refused = rejection(json.dumps({"operation": "create", "body": body}).encode())
    assert refused["status"] == 422
    assert refused["type"].endswith("/card-data-not-accepted")
    assert [e["field"] for e in refused["errors"]] == [f"body.{field}"]
    assert PAN not in json.dumps(refused) and "123" not in json.dumps(refused)


def test_reply_value_carries_result_or_problem() -> None:
    ok = Reply("r1", "create", 202, result={"id": "p"})
    assert ok.value() == {
        "request_id": "r1",
        "operation": "create",
        "status": 202,
        "result": {"id": "p"},
    }
    assert Reply.from_value(ok.value()) == ok
    bad = Reply("r2", None, 400, problem={"status": 400})
    assert "result" not in bad.value() and bad.value()["problem"] == {"status": 400}


@pytest.mark.parametrize(
    ("value", "holds"),
    [
        (json.dumps({"body": {"card": {"number": "x"}}}).encode(), True),
        (json.dumps({"body": {"cvc": "123"}}).encode(), True),
        (json.dumps({"body": {"description": f"pan {PAN}"}}).encode(), True),
        (f"garbage {PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}".encode(), True),
        (json.dumps({"body": {"card_token": "tok_abcdefgh"}}).encode(), False),
        (b"not json at all", False),
        (None, False),
    ],
)
def test_card_data_detection(value: bytes | None, holds: bool) -> None:
    assert card_data_in(value) is holds


def test_dead_letters_drop_card_values_and_redact_card_headers() -> None:
    value = json.dumps({"operation": "create", "body": {"card": {"number": PAN}}}).encode()
    kept = without_card_data(
        record(value, [("x-note", PAN.encode()), ("sanalpos-request-id", b"r")])
    )
    assert kept.value is None
    headers = dict(kept.headers)
    assert headers["dlq.value-dropped"] == b"card data in clear"
    assert PAN.encode() not in headers["x-note"]
    assert headers["sanalpos-request-id"] == b"r"


@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"operation": "create", "body": {"encrypted_card": "eyJh.b.c.d.e"}}).encode(),
        b'{"operation": "create", "body": {"encrypted_card": "eyJh.b.c.d',  # truncated JSON
    ],
)
def test_dead_letters_drop_encrypted_card_values(value: bytes) -> None:
    kept = without_card_data(record(value, [("sanalpos-request-id", b"r")]))
    assert kept.value is None
    assert dict(kept.headers)["dlq.value-dropped"] == b"encrypted card data (JWE)"


def test_dead_letters_keep_values_without_card_data() -> None:
    value = b'{"operation": "create", "body": {"card_token": "tok_abcdefgh"}}'
    kept = without_card_data(record(value, [("sanalpos-request-id", b"r")]))
    assert kept.value == value and dict(kept.headers) == {"sanalpos-request-id": b"r"}


def test_delivery_id_names_one_signed_message() -> None:
    base = RequestHeaders("mer_a", "r1", 1000, ("v1,x",))
    assert delivery_id(base, b"v") == delivery_id(base, b"v")
    assert delivery_id(base, b"v") != delivery_id(base, b"w")
    assert delivery_id(base, b"v") != delivery_id(RequestHeaders("mer_a", "r1", 1001, ()), b"v")
    assert delivery_id(base, b"v") != delivery_id(RequestHeaders("mer_b", "r1", 1000, ()), b"v")


def test_arrival_is_the_broker_stamp_when_there_is_one() -> None:
    assert arrival_s(record(b"", timestamp=1_700_000_000_500, timestamp_type=1)) == 1_700_000_000.5
    producer_time = arrival_s(record(b"", timestamp=5, timestamp_type=0))
    assert producer_time > 1_700_000_000  # our clock, not the producer's claim


def test_production_serves_the_entry_point_only_with_a_keyring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
    monkeypatch.delenv("INTAKE_SIGNING_KEYRING", raising=False)
    assert not KafkaEntrySettings().enabled
    monkeypatch.setenv("INTAKE_SIGNING_KEYRING", "file:/run/secrets/signing.json")
    assert KafkaEntrySettings().enabled
    assert KafkaEntrySettings().signing_keyring_spec == "file:/run/secrets/signing.json"


def test_a_configured_keyring_that_does_not_load_stops_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("INTAKE_SIGNING_KEYRING", f"file:{tmp_path / 'missing.json'}")
    with pytest.raises(OSError):
        signing_keyring(KafkaEntrySettings())


def test_development_falls_back_to_an_ephemeral_keyring(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("SANALPOS_ENV", raising=False)
    monkeypatch.delenv("INTAKE_SIGNING_KEYRING", raising=False)
    (tmp_path / "keys").write_text("a file where the keyring folder should be")
    monkeypatch.setenv("SANALPOS_STATE_DIR", str(tmp_path))
    keyring = signing_keyring(KafkaEntrySettings())
    assert keyring.key_id == "signing"


def test_development_keeps_the_signing_keyring_in_the_state_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("SANALPOS_ENV", raising=False)
    monkeypatch.delenv("INTAKE_SIGNING_KEYRING", raising=False)
    monkeypatch.setenv("SANALPOS_STATE_DIR", str(tmp_path))
    assert KafkaEntrySettings().signing_keyring_spec == f"local:{tmp_path / 'keys'}"


def test_development_keyring_is_created_in_the_state_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("SANALPOS_ENV", raising=False)
    monkeypatch.delenv("INTAKE_SIGNING_KEYRING", raising=False)
    monkeypatch.setenv("SANALPOS_STATE_DIR", str(tmp_path))
    signing_keyring(KafkaEntrySettings())
    assert (tmp_path / "keys" / "signing.json").stat().st_mode & 0o077 == 0
