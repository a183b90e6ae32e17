"""Encrypt-only key wrapping (format `sp3`): the writer holds a public key, the reader the private.

With a symmetric keyring, the service that encrypts card numbers could also decrypt them. Here
the data key is sealed to an X25519 public key (ephemeral-static Diffie-Hellman, HKDF-SHA256,
AES-256-GCM), so intake is configured with public keys only and can encrypt but never decrypt;
authorization holds the private keys. Ciphertexts keep the usual envelope layout:

    sp3.<key_id>.<version>.<ephemeral_pub(32) | nonce(12) | sealed_dek>.<data_nonce | ciphertext>

Keyring JSON: {"id": "pan", "kind": "x25519-sealed", "active": 2,
               "public": {"1": b64, "2": b64}, "private": {"1": b64, "2": b64}}
A public-only copy (for the encrypting service) simply has no "private" member.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sanalpos_common.crypto.keyring import Keyring, KeyringError
from sanalpos_common.crypto.wrapping import DecryptionError, KeyWrapper, WrappedKey

SP3 = "sp3"
KIND = "x25519-sealed"
_NONCE = 12
_PUB = 32


class EncryptOnlyError(KeyringError):
    """This service holds only public keys: it can encrypt but not decrypt."""


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class SealedKeyring:
    key_id: str
    active_version: int
    public: dict[int, bytes] = field(repr=False)
    private: dict[int, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.active_version not in self.public:
            raise KeyringError(f"keyring {self.key_id!r}: active version has no public key")
        for version, raw in self.private.items():
            derived = _raw_public(X25519PrivateKey.from_private_bytes(raw).public_key())
            if self.public.get(version) != derived:
                raise KeyringError(
                    f"keyring {self.key_id!r} v{version}: private and public keys differ"
                )

    @property
    def format(self) -> str:
        return SP3

    @property
    def can_decrypt(self) -> bool:
        return bool(self.private)

    def _kek(self, shared: bytes, ephemeral: bytes, recipient: bytes, version: int) -> bytes:
        info = b"|".join([SP3.encode(), self.key_id.encode(), str(version).encode()])
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=info
        ).derive(shared)

    def _wrap_aad(self, version: int, aad: bytes) -> bytes:
        return b"|".join([SP3.encode(), self.key_id.encode(), str(version).encode(), aad])

    def wrap(self, dek: bytes, aad: bytes) -> WrappedKey:
        version = self.active_version
        recipient = self.public[version]
        ephemeral_key = X25519PrivateKey.generate()
        ephemeral = _raw_public(ephemeral_key.public_key())
        shared = ephemeral_key.exchange(X25519PublicKey.from_public_bytes(recipient))
        kek = self._kek(shared, ephemeral, recipient, version)
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(kek).encrypt(nonce, dek, self._wrap_aad(version, aad))
        return WrappedKey(version, ephemeral + nonce + sealed)

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        if version not in self.private:
            if not self.private:
                raise EncryptOnlyError(f"keyring {self.key_id!r} holds public keys only")
            raise KeyringError(f"keyring {self.key_id!r} has no private key for version {version}")
        ephemeral, nonce, sealed = blob[:_PUB], blob[_PUB : _PUB + _NONCE], blob[_PUB + _NONCE :]
        try:
            private = X25519PrivateKey.from_private_bytes(self.private[version])
            shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            kek = self._kek(shared, ephemeral, self.public[version], version)
            return AESGCM(kek).decrypt(nonce, sealed, self._wrap_aad(version, aad))
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("ciphertext does not decrypt for this record") from exc

    # --- keys ---------------------------------------------------------------------------

    @classmethod
    def generate(cls, key_id: str) -> SealedKeyring:
        private = X25519PrivateKey.generate()
        raw_private = private.private_bytes_raw()
        return cls(key_id, 1, {1: _raw_public(private.public_key())}, {1: raw_private})

    def rotated(self) -> SealedKeyring:
        version = max(self.public) + 1
        private = X25519PrivateKey.generate()
        return SealedKeyring(
            self.key_id,
            version,
            {**self.public, version: _raw_public(private.public_key())},
            {**self.private, version: private.private_bytes_raw()},
        )

    def public_only(self) -> SealedKeyring:
        return SealedKeyring(self.key_id, self.active_version, dict(self.public), {})

    def to_json(self) -> str:
        def encode(keys: dict[int, bytes]) -> dict[str, str]:
            return {str(v): base64.b64encode(k).decode() for v, k in keys.items()}

        doc: dict[str, object] = {
            "id": self.key_id,
            "kind": KIND,
            "active": self.active_version,
            "public": encode(self.public),
        }
        if self.private:
            doc["private"] = encode(self.private)
        return json.dumps(doc)

    @classmethod
    def from_json(cls, text: str) -> SealedKeyring:
        try:
            doc = json.loads(text)
            if doc.get("kind") != KIND:
                raise KeyringError(f"not a {KIND} keyring")

            def decode(member: str) -> dict[int, bytes]:
                return {
                    int(v): base64.b64decode(k, validate=True)
                    for v, k in doc.get(member, {}).items()
                }

            return cls(str(doc["id"]), int(doc["active"]), decode("public"), decode("private"))
        except KeyringError:
            raise
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise KeyringError(f"malformed sealed keyring: {type(exc).__name__}") from None


def key_wrapper_from_json(text: str) -> KeyWrapper:
    """A keyring from its JSON, symmetric (`sp1`) or sealed (`sp3`) by its `kind`."""
    try:
        kind = json.loads(text).get("kind")
    except (ValueError, AttributeError):
        kind = None
    if kind == KIND:
        return SealedKeyring.from_json(text)
    return Keyring.from_json(text)
