"""Versioned symmetric keyrings loaded from configuration, never from the database.

Wire format of a keyring (env var or secret file), JSON:
    {"id": "pan", "active": 2, "keys": {"1": "<base64 32 bytes>", "2": "..."}}
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field


class KeyringError(ValueError):
    pass


@dataclass(frozen=True)
class Keyring:
    key_id: str
    active_version: int
    keys: dict[int, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.active_version not in self.keys:
            raise KeyringError(f"keyring {self.key_id!r}: active version missing")
        for version, key in self.keys.items():
            if len(key) != 32:
                raise KeyringError(f"keyring {self.key_id!r} v{version}: key must be 32 bytes")

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active_version]

    def key(self, version: int) -> bytes:
        try:
            return self.keys[version]
        except KeyError:
            raise KeyringError(f"keyring {self.key_id!r} has no version {version}") from None

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            doc = json.loads(text)
            keys = {int(v): base64.b64decode(k, validate=True) for v, k in doc["keys"].items()}
            return cls(key_id=str(doc["id"]), active_version=int(doc["active"]), keys=keys)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
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
                "keys": {str(v): base64.b64encode(k).decode() for v, k in self.keys.items()},
            }
        )

    def rotated(self) -> Keyring:
        version = max(self.keys) + 1
        return Keyring(self.key_id, version, {**self.keys, version: os.urandom(32)})
