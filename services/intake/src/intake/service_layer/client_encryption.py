"""Client-side encryption: browsers encrypt card data to the platform's RSA key (JWE).

The published key is a JWK (RSA, `alg` RSA-OAEP-256, `use` enc, `kid` = its RFC 7638
thumbprint). A card payload, the JSON object {"number", "exp_month", "exp_year", "cvc"}, is
sent as JWE compact serialization with `alg` RSA-OAEP-256 and `enc` A256GCM; nothing else is
accepted (no RSA1_5, no compression). Intake decrypts it in memory, validates it exactly like
a clear `card`, and then protects it for storage like any other card.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

log = logging.getLogger(__name__)

JWE_ALG = "RSA-OAEP-256"
JWE_ENC = "A256GCM"
MIN_RSA_BITS = 2048
MAX_JWE_LENGTH = 8192


class UnreadableCardPayload(ValueError):
    """The JWE is malformed, tampered with, for another key, or not a JSON object."""


@dataclass(frozen=True)
class ClientEncryption:
    key: RSAKey = field(repr=False)
    kid: str

    @classmethod
    def from_pem(cls, pem: str | bytes) -> ClientEncryption:
        key = RSAKey.import_key(pem if isinstance(pem, bytes) else pem.encode())
        if not key.is_private:
            raise ValueError("client encryption key must be an RSA private key")
        bits = key.private_key.key_size if key.private_key is not None else 0
        if bits < MIN_RSA_BITS:
            raise ValueError(f"client encryption key must have at least {MIN_RSA_BITS} bits")
        return cls(key=key, kid=key.thumbprint())

    def public_jwk(self) -> dict[str, Any]:
        public = self.key.as_dict(private=False)
        return {
            "kty": public["kty"],
            "kid": self.kid,
            "use": "enc",
            "alg": JWE_ALG,
            "enc": JWE_ENC,
            "n": public["n"],
            "e": public["e"],
        }

    def decrypt(self, compact: str) -> dict[str, Any]:
        """The decrypted JSON object. Error messages never carry the payload."""
        if len(compact) > MAX_JWE_LENGTH or compact.count(".") != 4:
            raise UnreadableCardPayload("not a JWE compact serialization")
        try:
            obj = jwe.decrypt_compact(compact, self.key, algorithms=[JWE_ALG, JWE_ENC])
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise UnreadableCardPayload(
                f"JWE does not decrypt with the current key ({type(exc).__name__})"
            ) from None
        header = obj.protected
        if header.get("alg") != JWE_ALG or header.get("enc") != JWE_ENC or "zip" in header:
            raise UnreadableCardPayload(f"JWE must use alg {JWE_ALG} and enc {JWE_ENC}")
        if "kid" in header and header["kid"] != self.kid:
            raise UnreadableCardPayload("JWE is for another key id: fetch the current key")
        try:
            payload = json.loads(obj.plaintext or b"")
        except (ValueError, UnicodeDecodeError):
            raise UnreadableCardPayload("JWE payload is not JSON") from None
        if not isinstance(payload, dict):
            raise UnreadableCardPayload("JWE payload must be a JSON object")
        return payload


def generate_private_key_pem() -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_or_create_dev_key(path: Path) -> bytes:
    """Development only: one RSA key per state folder, created on first use (mode 0600)."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = generate_private_key_pem()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".client-key-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process just wrote
            log.info("generated a development client-encryption key")
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()
