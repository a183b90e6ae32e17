"""Standard Webhooks signatures (https://www.standardwebhooks.com). Pure: no I/O.

signature = base64(HMAC-SHA256(secret_bytes, f"{webhook_id}.{timestamp}.{body}")), sent as
`webhook-signature: v1,<signature>`; several space-separated signatures during a secret
rotation. secret_bytes is the base64 decoding of the part after `whsec_`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
SIGNATURE_VERSION = "v1"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class InvalidSecret(ValueError):
    """Not a `whsec_<base64>` secret of 24 to 64 bytes."""


def secret_bytes(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"webhook secret must start with {SECRET_PREFIX!r}")
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("webhook secret is not valid base64 after 'whsec_'") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"webhook secret must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes"
        )
    return key


def generate_secret(size: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def sign(key: bytes, webhook_id: str, timestamp: int, body: str) -> str:
    """One `v1,<base64>` signature."""
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_header(keys: Sequence[bytes], webhook_id: str, timestamp: int, body: str) -> str:
    if not keys:
        raise InvalidSecret("at least one signing key is required")
    return " ".join(sign(key, webhook_id, timestamp, body) for key in keys)


def webhook_headers(
    keys: Sequence[bytes], webhook_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The three Standard Webhooks headers plus the content type."""
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, webhook_id, timestamp, body),
    }
