"""Versioned symmetric keyrings loaded from configuration, never from the database.

A `Keyring` is the local key-encryption key (KEK) of envelope format `sp1`: it wraps data keys
with AES-256-GCM itself. (A Vault transit key plays the same role for format `sp2`, see
`sanalpos_common.crypto.vault`.)

Wire format of a keyring (env var, secret file or local keyring file), JSON:
    {"id": "pan", "active": 2,
     "keys": {"1": "<base64 32 bytes>", "2": "..."},
     "states": {"1": "decrypt_only", "2": "active", "0": "destroyed"}}

`states` is optional (older documents have none): then `active` is the active version and every
other version is decrypt-only. A destroyed version keeps its state entry but no key material.

Version states:
    active        encrypts and decrypts; new writes use the newest active version (`active`)
    decrypt_only  "disabled for encryption": decrypts old ciphertexts, never encrypts
    disabled      suspended: neither encrypts nor decrypts, material kept (can be re-enabled);
                  the step before destroy, to flush out forgotten readers
    destroyed     key material gone for good; ciphertexts under it are unreadable
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sanalpos_common.crypto.wrapping import DecryptionError, WrappedKey

SP1 = "sp1"
_NONCE = 12


class KeyringError(ValueError):
    pass


class KeyVersionUnavailable(KeyringError):
    """The ciphertext's key version is unknown, suspended or destroyed in this keyring."""

    def __init__(self, message: str, *, key_id: str, version: int, state: str | None) -> None:
        super().__init__(message)
        self.key_id = key_id
        self.version = version
        self.state = state


class KeyState(StrEnum):
    ACTIVE = "active"
    DECRYPT_ONLY = "decrypt_only"
    DISABLED = "disabled"
    DESTROYED = "destroyed"

    @property
    def can_encrypt(self) -> bool:
        return self is KeyState.ACTIVE

    @property
    def can_decrypt(self) -> bool:
        return self in (KeyState.ACTIVE, KeyState.DECRYPT_ONLY)


def key_check_value(key: bytes) -> str:
    """Short, non-secret identifier of key material (for status output and audit logs)."""
    return hmac.new(key, b"sanalpos-kcv", hashlib.sha256).hexdigest()[:12]


@dataclass(frozen=True)
class Keyring:
    key_id: str
    active_version: int
    keys: dict[int, bytes] = field(repr=False)
    states: Mapping[int, KeyState] = field(default_factory=dict)

    format = SP1

    def __post_init__(self) -> None:
        if not self.key_id or "." in self.key_id or "|" in self.key_id:
            raise KeyringError(f"keyring id {self.key_id!r} must be non-empty without '.' or '|'")
        states: dict[int, KeyState] = {}
        for version, state in self.states.items():
            states[int(version)] = KeyState(state)
        for version in self.keys:
            states.setdefault(
                version,
                KeyState.ACTIVE if version == self.active_version else KeyState.DECRYPT_ONLY,
            )
        object.__setattr__(self, "states", states)
        for version, state in states.items():
            if version < 0:
                raise KeyringError(f"keyring {self.key_id!r}: negative version {version}")
            has_key = version in self.keys
            if state is KeyState.DESTROYED and has_key:
                raise KeyringError(f"keyring {self.key_id!r} v{version}: destroyed but has a key")
            if state is not KeyState.DESTROYED and not has_key:
                raise KeyringError(f"keyring {self.key_id!r} v{version}: key material missing")
        for version, key in self.keys.items():
            if len(key) != 32:
                raise KeyringError(f"keyring {self.key_id!r} v{version}: key must be 32 bytes")
        if self.active_version not in self.keys:
            raise KeyringError(f"keyring {self.key_id!r}: active version missing")
        actives = [v for v, s in states.items() if s is KeyState.ACTIVE]
        if states[self.active_version] is not KeyState.ACTIVE or self.active_version != max(
            actives
        ):
            raise KeyringError(
                f"keyring {self.key_id!r}: active version must be the newest active version"
            )

    # --- key material -------------------------------------------------------------------

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active_version]

    def state(self, version: int) -> KeyState | None:
        return self.states.get(version)

    def key(self, version: int) -> bytes:
        """Key material of a version that may decrypt; KeyVersionUnavailable names why not."""
        state = self.state(version)
        if state is None:
            raise KeyVersionUnavailable(
                f"keyring {self.key_id!r} has no version {version}",
                key_id=self.key_id,
                version=version,
                state=None,
            )
        if not state.can_decrypt:
            raise KeyVersionUnavailable(
                f"keyring {self.key_id!r} version {version} is {state.value}",
                key_id=self.key_id,
                version=version,
                state=state.value,
            )
        return self.keys[version]

    def versions(self) -> list[int]:
        return sorted(self.states)

    # --- KeyWrapper (format sp1: local AES-256-GCM key wrapping) -------------------------

    def _wrap_aad(self, version: int, aad: bytes) -> bytes:
        return b"|".join([SP1.encode(), self.key_id.encode(), str(version).encode(), aad])

    def wrap(self, dek: bytes, aad: bytes) -> WrappedKey:
        nonce = os.urandom(_NONCE)
        version = self.active_version
        wrapped = AESGCM(self.active_key).encrypt(nonce, dek, self._wrap_aad(version, aad))
        return WrappedKey(version, nonce + wrapped)

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        kek = self.key(version)
        try:
            return AESGCM(kek).decrypt(blob[:_NONCE], blob[_NONCE:], self._wrap_aad(version, aad))
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError("ciphertext does not decrypt for this record") from exc

    # --- serialisation ------------------------------------------------------------------

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            doc = json.loads(text)
            keys = {int(v): base64.b64decode(k, validate=True) for v, k in doc["keys"].items()}
            states = {int(v): KeyState(s) for v, s in (doc.get("states") or {}).items()}
            return cls(
                key_id=str(doc["id"]), active_version=int(doc["active"]), keys=keys, states=states
            )
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            if isinstance(exc, KeyringError):
                raise
            raise KeyringError(f"malformed keyring: {type(exc).__name__}") from None

    @classmethod
    def generate(cls, key_id: str) -> Keyring:
        return cls(key_id=key_id, active_version=1, keys={1: os.urandom(32)})

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.key_id,
                "active": self.active_version,
                "keys": {
                    str(v): base64.b64encode(k).decode() for v, k in sorted(self.keys.items())
                },
                "states": {str(v): s.value for v, s in sorted(self.states.items())},
            }
        )

    # --- lifecycle (each returns a new keyring; the file/secret is the source of truth) --

    def rotated(self) -> Keyring:
        """A new newest version becomes active; previously active versions become decrypt-only."""
        version = max(self.states) + 1
        return self.with_version(version, os.urandom(32))

    def with_version(self, version: int, key: bytes, *, activate: bool = True) -> Keyring:
        if version in self.states:
            raise KeyringError(f"keyring {self.key_id!r} already has version {version}")
        states = dict(self.states)
        if activate:
            states = {
                v: (KeyState.DECRYPT_ONLY if s is KeyState.ACTIVE else s) for v, s in states.items()
            }
        states[version] = KeyState.ACTIVE if activate else KeyState.DECRYPT_ONLY
        active = version if activate else self.active_version
        return Keyring(self.key_id, active, {**self.keys, version: key}, states)

    def with_state(self, version: int, state: KeyState | str) -> Keyring:
        """Change one version's state. The newest active version stays the write key; at least
        one active version must remain; destroying removes the material irreversibly."""
        state = KeyState(state)
        current = self.state(version)
        if current is None:
            raise KeyringError(f"keyring {self.key_id!r} has no version {version}")
        if current is KeyState.DESTROYED and state is not KeyState.DESTROYED:
            raise KeyringError(f"keyring {self.key_id!r} version {version} is destroyed for good")
        states = {**self.states, version: state}
        keys = dict(self.keys)
        if state is KeyState.DESTROYED:
            keys.pop(version, None)
        actives = [v for v, s in states.items() if s is KeyState.ACTIVE]
        if not actives:
            raise KeyringError(
                f"keyring {self.key_id!r}: version {version} is the last active version; "
                "rotate or enable another version first"
            )
        return Keyring(self.key_id, max(actives), keys, states)

    def describe(self) -> list[dict[str, object]]:
        """Per-version state and key check value; never key material."""
        return [
            {
                "version": v,
                "state": self.states[v].value,
                "kcv": key_check_value(self.keys[v]) if v in self.keys else None,
                "writes": v == self.active_version,
            }
            for v in self.versions()
        ]
