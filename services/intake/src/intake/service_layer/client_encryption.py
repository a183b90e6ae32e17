"""Client-side encryption: browsers encrypt card data to the platform's RSA key (JWE).

The published key is a JWK (RSA, `alg` RSA-OAEP-256, `use` enc, `kid` = its RFC 7638
thumbprint). A card payload, the JSON object {"number", "exp_month", "exp_year", "cvc"}, is
sent as JWE compact serialization with `alg` RSA-OAEP-256 and `enc` A256GCM; nothing else is
accepted (no RSA1_5, no compression). Intake decrypts it in memory, validates it exactly like
a clear `card`, and then protects it for storage like any other card.

A JWE is bound, in its protected header (authenticated by AES-GCM, so it cannot be edited
without breaking the token): `aud` is the merchant id it is for, `iat` when it was made
(Unix seconds), `jti` a unique id. Intake refuses a token for another merchant, one older
than `max_age_s` or more than `clock_skew_s` in the future, and one whose `jti` was used
before (recorded in `used_jwe` with the effect it paid for), so a captured token cannot be
replayed by anyone, nor twice.

The hosted payment page binds its tokens to the checkout session instead: `aud` is the
session id (`cs_...`), accepted only by that session's submit (`open_bound` with
`audience=`). The merchant API expects the merchant id, which no session id equals, so a
page token never pays through the API and an API token never pays on a page.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.registry import HeaderParameter

log = logging.getLogger(__name__)

JWE_ALG = "RSA-OAEP-256"
JWE_ENC = "A256GCM"
MIN_RSA_BITS = 2048
MAX_JWE_LENGTH = 8192


def _checked_later(_: Any) -> None:
    """The binding members are checked by `open_bound`, with messages of our own."""


# The binding members are private header parameters to joserfc, which refuses unknown ones.
_REGISTRY = jwe.JWERegistry(
    header_registry={
        name: HeaderParameter(description, _checked_later)
        for name, description in (
            ("aud", "the merchant id (or checkout session id) the card is for"),
            ("iat", "when the token was made, Unix seconds"),
            ("jti", "the token's unique id"),
        )
    },
    algorithms=[JWE_ALG, JWE_ENC],
)
JTI_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
DEFAULT_MAX_AGE_S = 900.0
DEFAULT_CLOCK_SKEW_S = 60.0


class UnreadableCardPayload(ValueError):
    """The JWE is malformed, tampered with, for another key, or not a JSON object."""

    code = "jwe_invalid"


class JweNotBound(UnreadableCardPayload):
    """The protected header lacks `aud`, `iat` or `jti`, or one is malformed."""

    code = "jwe_unbound"


class JweWrongAudience(UnreadableCardPayload):
    code = "jwe_wrong_audience"


class JweExpired(UnreadableCardPayload):
    """`iat` is older than the maximum age, or too far in the future."""

    code = "jwe_expired"


class JweReused(UnreadableCardPayload):
    code = "jwe_reused"


@dataclass(frozen=True)
class JweUse:
    """One use of a bound token. Its freshness is checked, and its `jti` recorded, where the
    request takes effect (after an idempotent replay would have answered), until it could
    no longer be accepted anyway."""

    merchant_id: str
    jti: str
    issued_at: int
    max_age_s: float = DEFAULT_MAX_AGE_S
    clock_skew_s: float = DEFAULT_CLOCK_SKEW_S

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.issued_at + self.max_age_s + self.clock_skew_s, UTC)

    def check_fresh(self, now_s: float | None = None) -> None:
        now_s = time.time() if now_s is None else now_s
        if self.issued_at < now_s - self.max_age_s:
            raise JweExpired(f"JWE is older than {self.max_age_s:.0f}s (iat): make a new one")
        if self.issued_at > now_s + self.clock_skew_s:
            raise JweExpired("JWE iat lies in the future: check the clock that made it")


@dataclass(frozen=True)
class ClientEncryption:
    key: RSAKey = field(repr=False)
    kid: str
    max_age_s: float = DEFAULT_MAX_AGE_S
    clock_skew_s: float = DEFAULT_CLOCK_SKEW_S

    @classmethod
    def from_pem(
        cls,
        pem: str | bytes,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
    ) -> ClientEncryption:
        key = RSAKey.import_key(pem if isinstance(pem, bytes) else pem.encode())
        if not key.is_private:
            raise ValueError("client encryption key must be an RSA private key")
        bits = key.private_key.key_size if key.private_key is not None else 0
        if bits < MIN_RSA_BITS:
            raise ValueError(f"client encryption key must have at least {MIN_RSA_BITS} bits")
        return cls(key=key, kid=key.thumbprint(), max_age_s=max_age_s, clock_skew_s=clock_skew_s)

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

    def open_bound(
        self, compact: str, merchant_id: str, audience: str | None = None
    ) -> tuple[dict[str, Any], JweUse]:
        """The decrypted card object of a token made for `audience` (default: `merchant_id`;
        the page passes its checkout session id), and its use, recorded under `merchant_id`
        (whose freshness and single use are checked when it is recorded). Raises
        UnreadableCardPayload, or a binding subclass of it."""
        expected = merchant_id if audience is None else audience
        header, payload = self._decrypt(compact)
        aud, iat, jti = header.get("aud"), header.get("iat"), header.get("jti")
        if not isinstance(aud, str) or not aud:
            raise JweNotBound("JWE protected header must carry aud: your merchant id")
        if isinstance(iat, bool) or not isinstance(iat, int):
            raise JweNotBound("JWE protected header must carry iat: Unix seconds, an integer")
        if not isinstance(jti, str) or not JTI_PATTERN.match(jti):
            raise JweNotBound("JWE protected header must carry jti: 16-128 of A-Z a-z 0-9 _ -")
        if aud != expected:
            if audience is None:
                raise JweWrongAudience("JWE was made for another merchant (aud)")
            raise JweWrongAudience("JWE was made for another checkout session (aud)")
        return payload, JweUse(merchant_id, jti, iat, self.max_age_s, self.clock_skew_s)

    def decrypt(self, compact: str) -> dict[str, Any]:
        """The decrypted JSON object, binding not checked (open_bound checks it). Error
        messages never carry the payload."""
        return self._decrypt(compact)[1]

    def _decrypt(self, compact: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(protected header, decrypted JSON object)."""
        if len(compact) > MAX_JWE_LENGTH or compact.count(".") != 4:
            raise UnreadableCardPayload("not a JWE compact serialization")
        try:
            obj = jwe.decrypt_compact(compact, self.key, registry=_REGISTRY)
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
        return dict(header), payload


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
