"""Signatures on Kafka requests: header parsing, HMAC verification, freshness."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from intake.domain.request_signing import (
    MERCHANT_HEADER,
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RequestHeaders,
    Unauthenticated,
    check_fresh,
    new_signing_secret,
    read_headers,
    sign,
    signature_matches,
)

SECRET = "mrsec_test-secret"
VALUE = b'{"operation":"create","body":{}}'


def headers(signature: str, **overrides: bytes) -> list[tuple[str, bytes]]:
    found = {
        MERCHANT_HEADER: b"mer_a",
        REQUEST_ID_HEADER: b"req-1",
        TIMESTAMP_HEADER: b"1700000000",
        SIGNATURE_HEADER: signature.encode(),
    }
    found.update(overrides)
    return [(k, v) for k, v in found.items() if v != b"<absent>"]


def test_signature_is_hmac_sha256_over_id_timestamp_and_raw_value() -> None:
    digest = hmac.new(SECRET.encode(), b"req-1.1700000000." + VALUE, hashlib.sha256).digest()
    assert sign(SECRET, "req-1", 1700000000, VALUE) == "v1," + base64.b64encode(digest).decode()


def test_a_valid_signature_verifies_and_a_changed_value_does_not() -> None:
    parsed = read_headers(headers(sign(SECRET, "req-1", 1700000000, VALUE)))
    assert parsed == RequestHeaders("mer_a", "req-1", 1700000000, (parsed.signatures[0],))
    assert signature_matches([SECRET], parsed, VALUE)
    assert not signature_matches([SECRET], parsed, VALUE + b" ")
    assert not signature_matches(["mrsec_other"], parsed, VALUE)


def test_signature_binds_the_request_id_and_timestamp() -> None:
    signature = sign(SECRET, "req-1", 1700000000, VALUE)
    other_id = read_headers(headers(signature, **{REQUEST_ID_HEADER: b"req-2"}))
    other_time = read_headers(headers(signature, **{TIMESTAMP_HEADER: b"1700000001"}))
    assert not signature_matches([SECRET], other_id, VALUE)
    assert not signature_matches([SECRET], other_time, VALUE)


def test_during_rotation_either_secret_and_either_signature_verify() -> None:
    new = new_signing_secret()
    both = f"{sign(SECRET, 'req-1', 1700000000, VALUE)} {sign(new, 'req-1', 1700000000, VALUE)}"
    parsed = read_headers(headers(both))
    assert signature_matches([new], parsed, VALUE)
    assert signature_matches([SECRET], parsed, VALUE)
    assert signature_matches(
        [new, SECRET], read_headers(headers(sign(new, "req-1", 1700000000, VALUE))), VALUE
    )


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({MERCHANT_HEADER: b"<absent>"}, "missing header sanalpos-merchant-id"),
        ({REQUEST_ID_HEADER: b"x" * 256}, "longer than 255"),
        ({TIMESTAMP_HEADER: b"2024-01-01"}, "Unix seconds"),
        ({SIGNATURE_HEADER: b"v0,abc"}, "no v1 signature"),
        ({SIGNATURE_HEADER: b"<absent>"}, "missing header sanalpos-signature"),
        ({MERCHANT_HEADER: "mér".encode()}, "not ASCII"),
    ],
)
def test_bad_headers_are_unauthenticated_with_the_reason(
    override: dict[str, bytes], reason: str
) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        read_headers(headers("v1,abc", **override))


def test_header_names_are_case_insensitive_and_first_value_wins() -> None:
    pairs = [(k.upper(), v) for k, v in headers("v1,abc")] + [(MERCHANT_HEADER, b"mer_b")]
    assert read_headers(pairs).merchant_id == "mer_a"


def test_freshness_is_judged_against_arrival_within_the_tolerance() -> None:
    check_fresh(1000, 1299.0, 300)
    check_fresh(1299, 1000.0, 300)
    with pytest.raises(Unauthenticated, match="stale or replayed"):
        check_fresh(1000, 1301.0, 300)
    with pytest.raises(Unauthenticated, match="stale or replayed"):
        check_fresh(1301, 1000.0, 300)


def test_new_secrets_are_random_and_prefixed() -> None:
    first, second = new_signing_secret(), new_signing_secret()
    assert first.startswith("mrsec_") and second.startswith("mrsec_")
    assert first != second and len(first) >= 40
