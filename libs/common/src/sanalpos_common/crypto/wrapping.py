"""The key-encryption step of envelope encryption, behind one interface.

A `KeyWrapper` wraps a fresh data-encryption key (DEK) under its key-encryption key (KEK) and
unwraps it again. `Keyring` does it locally with AES-256-GCM (format `sp1`); `VaultTransitKeyring`
asks Vault transit, so the KEK never leaves Vault (format `sp2`). The envelope code in
`envelope.py` only ever sees this interface.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable


class DecryptionError(Exception):
    """Wrong key, wrong associated data, or tampered ciphertext."""


class WrappedKey(NamedTuple):
    version: int
    """KEK version that wrapped the data key (written into the ciphertext header)."""
    blob: bytes
    """Opaque wrapped data key; only the wrapper that made it can unwrap it."""


@runtime_checkable
class KeyWrapper(Protocol):
    @property
    def key_id(self) -> str:
        """Name of the KEK (no '.' or '|'); written into every ciphertext header."""
        ...

    @property
    def format(self) -> str:
        """Envelope format this wrapper writes and reads: 'sp1' (local) or 'sp2' (Vault)."""
        ...

    @property
    def active_version(self) -> int:
        """KEK version new writes use (the newest active one)."""
        ...

    def wrap(self, dek: bytes, aad: bytes) -> WrappedKey: ...

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        """Raises DecryptionError (tampered/wrong record) or KeyringError (version unusable)."""
        ...
