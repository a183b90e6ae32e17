"""AES-256-GCM envelope encryption.

Each value gets a fresh 256-bit data key (DEK); the value is encrypted with it (AES-256-GCM,
associated data = the record binding, e.g. merchant and payment id), and the DEK is wrapped by a
key-encryption key (KEK) through a `KeyWrapper`. A ciphertext moved to another record will not
decrypt.

Formats (dot separated; URL-safe base64 without padding). Both stay readable forever:
    sp1.<key_id>.<kek_version>.<wrap_nonce|wrapped_dek>.<data_nonce|ciphertext>
        KEK is a local `Keyring` version; the DEK is wrapped with AES-256-GCM under
        associated data "sp1|<key_id>|<kek_version>|<aad>".
    sp2.<key_id>.<kek_version>.<vault_ciphertext>.<data_nonce|ciphertext>
        KEK is Vault transit key <key_id>; the wrapped DEK is Vault's own "vault:v<N>:..."
        string (base64url of its ASCII), N == kek_version, made by transit/encrypt with
        associated data "sp2|<key_id>|<aad>".
See docs/security.md.
"""

from __future__ import annotations

import base64
import os
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sanalpos_common.crypto.wrapping import DecryptionError, KeyWrapper

FORMAT = "sp1"  # format of local keyrings (kept for callers that imported it)
FORMATS = frozenset({"sp1", "sp2", "sp3"})
_NONCE = 12

__all__ = [
    "FORMAT",
    "FORMATS",
    "DecryptionError",
    "ParsedToken",
    "decrypt",
    "encrypt",
    "key_version",
    "parse",
    "rewrap",
    "token_prefix",
]


class ParsedToken(NamedTuple):
    format: str
    key_id: str
    version: int
    wrapped: bytes
    data: bytes
    data_b64: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse(token: str) -> ParsedToken:
    try:
        fmt, key_id, version_text, wrapped_b64, data_b64 = token.split(".")
        if fmt not in FORMATS or not version_text.isdigit():
            raise ValueError(fmt)
        return ParsedToken(
            fmt, key_id, int(version_text), _unb64(wrapped_b64), _unb64(data_b64), data_b64
        )
    except (ValueError, TypeError):
        raise DecryptionError("malformed ciphertext") from None


def token_prefix(keyring: KeyWrapper, version: int | None = None) -> str:
    """Header every ciphertext written by `keyring` at `version` (default: newest) starts with."""
    v = keyring.active_version if version is None else version
    return f"{keyring.format}.{keyring.key_id}.{v}."


def encrypt(keyring: KeyWrapper, plaintext: bytes, aad: bytes) -> str:
    dek = AESGCM.generate_key(bit_length=256)
    data_nonce = os.urandom(_NONCE)
    ciphertext = AESGCM(dek).encrypt(data_nonce, plaintext, aad)
    wrapped = keyring.wrap(dek, aad)
    return ".".join(
        [
            keyring.format,
            keyring.key_id,
            str(wrapped.version),
            _b64(wrapped.blob),
            _b64(data_nonce + ciphertext),
        ]
    )


def _check_owner(keyring: KeyWrapper, parsed: ParsedToken) -> None:
    if parsed.format != keyring.format or parsed.key_id != keyring.key_id:
        raise DecryptionError(
            f"ciphertext is for key {parsed.format}:{parsed.key_id!r}, "
            f"not {keyring.format}:{keyring.key_id!r}"
        )


def decrypt(keyring: KeyWrapper, token: str, aad: bytes) -> bytes:
    parsed = parse(token)
    _check_owner(keyring, parsed)
    dek = keyring.unwrap(parsed.version, parsed.wrapped, aad)  # KeyringError names the version
    data = parsed.data
    try:
        return AESGCM(dek).decrypt(data[:_NONCE], data[_NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("ciphertext does not decrypt for this record") from exc


def rewrap(token: str, keyring: KeyWrapper, aad: bytes) -> str:
    """Re-wrap only the data key under the keyring's newest version; the value's ciphertext
    stays byte for byte. Idempotent: a token already on the newest version comes back as is."""
    parsed = parse(token)
    _check_owner(keyring, parsed)
    if parsed.version == keyring.active_version:
        return token
    dek = keyring.unwrap(parsed.version, parsed.wrapped, aad)
    wrapped = keyring.wrap(dek, aad)
    return ".".join(
        [keyring.format, keyring.key_id, str(wrapped.version), _b64(wrapped.blob), parsed.data_b64]
    )


def key_version(token: str) -> tuple[str, int]:
    """(key_id, version) a ciphertext was written under, for rotation jobs."""
    parsed = parse(token)
    return parsed.key_id, parsed.version
