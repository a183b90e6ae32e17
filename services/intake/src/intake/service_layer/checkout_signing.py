"""The signature on a checkout result (the browser's trip back to the shop).

Ed25519 over `domain.checkout.signed_text` (version, key id, merchant, session, payment,
status, timestamp, one a line). Shops verify with the public key from
GET /v1/checkout/signing-keys, picked by `key_id`: nothing secret is shared with them, and a
browser that edits the query breaks the signature."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger(__name__)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ResultSigner:
    key: Ed25519PrivateKey = field(repr=False)
    kid: str

    @classmethod
    def from_pem(cls, pem: str | bytes) -> ResultSigner:
        key = serialization.load_pem_private_key(
            pem if isinstance(pem, bytes) else pem.encode(), None
        )
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("checkout signing key must be an Ed25519 private key")
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(key, "cse_" + hashlib.sha256(raw).hexdigest()[:16])

    def sign(self, text: bytes) -> str:
        return b64url(self.key.sign(text))

    def verify(self, text: bytes, signature: str) -> bool:
        try:
            self.key.public_key().verify(b64url_decode(signature), text)
        except (InvalidSignature, ValueError):
            return False
        return True

    def public_jwk(self) -> dict[str, Any]:
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": self.kid,
            "x": b64url(raw),
            "use": "sig",
            "alg": "EdDSA",
        }


def generate_signing_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_or_create_dev_signing_key(path: Path) -> bytes:
    """Development only: one key per state folder, made on first use (mode 0600)."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".checkout-key-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(generate_signing_key_pem())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # never replaces a key another process just wrote
    finally:
        os.unlink(tmp)
    return path.read_bytes()
