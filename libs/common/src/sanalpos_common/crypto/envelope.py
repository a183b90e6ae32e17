"""AES-256-GCM envelope encryption.

Each value gets a fresh 256-bit data key; the data key is wrapped (AES-256-GCM) by the
keyring's active key-encryption key. Associated data binds the ciphertext to its record
(e.g. merchant and payment id), so a ciphertext moved to another record will not decrypt.

Format v1 (dot separated, URL-safe base64 without padding):
    sp1.<key_id>.<kek_version>.<wrap_nonce|wrapped_dek>.<data_nonce|ciphertext>
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sanalpos_common.crypto.keyring import Keyring

FORMAT = "sp1"
_NONCE = 12


class DecryptionError(Exception):
    """Wrong key, wrong associated data, or tampered ciphertext."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _wrap_aad(key_id: str, version: int, aad: bytes) -> bytes:
    return b"|".join([FORMAT.encode(), key_id.encode(), str(version).encode(), aad])


def encrypt(keyring: Keyring, plaintext: bytes, aad: bytes) -> str:
    dek = AESGCM.generate_key(bit_length=256)
    data_nonce, wrap_nonce = os.urandom(_NONCE), os.urandom(_NONCE)
    ciphertext = AESGCM(dek).encrypt(data_nonce, plaintext, aad)
    header_aad = _wrap_aad(keyring.key_id, keyring.active_version, aad)
    wrapped = AESGCM(keyring.active_key).encrypt(wrap_nonce, dek, header_aad)
    return ".".join(
        [
            FORMAT,
            keyring.key_id,
            str(keyring.active_version),
            _b64(wrap_nonce + wrapped),
            _b64(data_nonce + ciphertext),
        ]
    )


def decrypt(keyring: Keyring, token: str, aad: bytes) -> bytes:
    try:
        fmt, key_id, version_text, wrapped_b64, data_b64 = token.split(".")
        version = int(version_text)
    except ValueError:
        raise DecryptionError("malformed ciphertext") from None
    if fmt != FORMAT or key_id != keyring.key_id:
        raise DecryptionError(f"ciphertext is for key {key_id!r}, not {keyring.key_id!r}")
    kek = keyring.key(version)  # KeyringError names the missing version
    try:
        wrapped, data = _unb64(wrapped_b64), _unb64(data_b64)
        dek = AESGCM(kek).decrypt(
            wrapped[:_NONCE], wrapped[_NONCE:], _wrap_aad(key_id, version, aad)
        )
        return AESGCM(dek).decrypt(data[:_NONCE], data[_NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("ciphertext does not decrypt for this record") from exc


def key_version(token: str) -> tuple[str, int]:
    """(key_id, version) a ciphertext was written under, for rotation jobs."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != FORMAT:
        raise DecryptionError("malformed ciphertext")
    return parts[1], int(parts[2])
