"""Signatures on merchant requests published to Kafka (pure: no I/O).

Shaped like Standard Webhooks, in the other direction: the merchant signs
`{request_id}.{timestamp}.` followed by the raw message value with HMAC-SHA256 under its
signing secret (the secret string's UTF-8 bytes are the key) and sends `v1,<base64 digest>`.
Several signatures may be sent, separated by spaces (e.g. under the old and the new secret
during a rotation); one valid signature is enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MERCHANT_HEADER = "sanalpos-merchant-id"
REQUEST_ID_HEADER = "sanalpos-request-id"
TIMESTAMP_HEADER = "sanalpos-timestamp"
SIGNATURE_HEADER = "sanalpos-signature"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "mrsec_"  # noqa: S105 - a prefix, not a secret
MAX_REQUEST_ID_LENGTH = 255
MAX_MERCHANT_ID_LENGTH = 64
MAX_SIGNATURES = 4  # bounds the work an attacker can ask for per message


class Unauthenticated(Exception):
    """The message cannot be attributed to a merchant: it gets no reply, only a dead letter."""


@dataclass(frozen=True)
class RequestHeaders:
    merchant_id: str
    request_id: str
    timestamp: int
    signatures: tuple[str, ...]


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def signed_content(request_id: str, timestamp: int, value: bytes) -> bytes:
    return f"{request_id}.{timestamp}.".encode() + value


def sign(secret: str, request_id: str, timestamp: int, value: bytes) -> str:
    digest = hmac.new(
        secret.encode(), signed_content(request_id, timestamp, value), hashlib.sha256
    ).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_matches(secrets_: Sequence[str], headers: RequestHeaders, value: bytes) -> bool:
    """True when one of the sent signatures is valid under one of the merchant's secrets."""
    expected = [sign(s, headers.request_id, headers.timestamp, value) for s in secrets_]
    # Compare every pair (no early exit) so timing says nothing about which one matched.
    found = False
    for sent in headers.signatures:
        for candidate in expected:
            found |= hmac.compare_digest(sent.encode(), candidate.encode())
    return found


def _text(headers: Mapping[str, bytes], name: str) -> str:
    raw = headers.get(name)
    if raw is None:
        raise Unauthenticated(f"missing header {name}")
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise Unauthenticated(f"header {name} is not ASCII") from None
    if not text:
        raise Unauthenticated(f"empty header {name}")
    return text


def header_map(pairs: Iterable[tuple[str, bytes]]) -> dict[str, bytes]:
    """Kafka headers (a list of pairs; names may repeat) -> first value per lower-case name."""
    found: dict[str, bytes] = {}
    for name, value in pairs:
        found.setdefault(name.lower(), value if isinstance(value, bytes) else bytes(value))
    return found


def read_headers(pairs: Iterable[tuple[str, bytes]]) -> RequestHeaders:
    headers = header_map(pairs)
    merchant_id = _text(headers, MERCHANT_HEADER)
    if len(merchant_id) > MAX_MERCHANT_ID_LENGTH:
        raise Unauthenticated(f"header {MERCHANT_HEADER} is too long")
    request_id = _text(headers, REQUEST_ID_HEADER)
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise Unauthenticated(f"header {REQUEST_ID_HEADER} is longer than 255 characters")
    timestamp_text = _text(headers, TIMESTAMP_HEADER)
    if not timestamp_text.isdigit() or len(timestamp_text) > 12:
        raise Unauthenticated(f"header {TIMESTAMP_HEADER} must be Unix seconds")
    signatures = tuple(
        s
        for s in _text(headers, SIGNATURE_HEADER).split(" ")
        if s.startswith(f"{SIGNATURE_VERSION},")
    )
    if not signatures:
        raise Unauthenticated(f"header {SIGNATURE_HEADER} holds no {SIGNATURE_VERSION} signature")
    return RequestHeaders(merchant_id, request_id, int(timestamp_text), signatures[:MAX_SIGNATURES])


def check_fresh(timestamp: int, reference_s: float, tolerance_s: float) -> None:
    """The signed time must lie within the tolerance of when the broker took the message."""
    if abs(reference_s - timestamp) > tolerance_s:
        raise Unauthenticated(
            f"timestamp {timestamp} is more than {tolerance_s:.0f}s from the message's "
            f"arrival ({reference_s:.0f}): stale or replayed"
        )
