"""HashiCorp Vault transit as the key-encryption key (format `sp2`).

The KEK never leaves Vault: the data key is wrapped by `transit/encrypt/<name>` and unwrapped by
`transit/decrypt/<name>`, both with associated data that binds the wrapped key to its record.
The KEK version comes from Vault's `vault:v<N>:` ciphertext prefix; key rotation, minimum
decryption version (≈ decrypt-only/disabled) and trim (≈ destroyed) are Vault's own
(`transit/keys/<name>/rotate`, `/config`, `/trim`). The Vault token needs only `update` on
`transit/encrypt/<name>` (intake) or `transit/decrypt/<name>` (authorization), plus `read` on
`transit/keys/<name>` for the version.

hvac is synchronous (requests): from async code call encrypt/decrypt through
`asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import re
import threading
from typing import Any

import hvac
import hvac.exceptions

from sanalpos_common.crypto.keyring import KeyringError, KeyVersionUnavailable
from sanalpos_common.crypto.wrapping import DecryptionError, WrappedKey

SP2 = "sp2"
_VAULT_CIPHERTEXT = re.compile(r"^vault:v(\d+):[A-Za-z0-9+/=]+$")


def _std_b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def vault_version(ciphertext: str) -> int:
    match = _VAULT_CIPHERTEXT.match(ciphertext)
    if match is None:
        raise DecryptionError("malformed Vault ciphertext")
    return int(match.group(1))


class VaultTransitKeyring:
    """KeyWrapper over one Vault transit key. Thread-safe; `refresh()` re-reads key metadata."""

    format = SP2

    def __init__(self, client: hvac.Client, name: str, *, mount_point: str = "transit") -> None:
        if not name or "." in name or "|" in name:
            raise KeyringError(f"transit key name {name!r} must be non-empty without '.' or '|'")
        self._client = client
        self._name = name
        self._mount = mount_point
        self._lock = threading.Lock()
        self._latest: int | None = None
        self._min_decryption = 1

    @property
    def key_id(self) -> str:
        return self._name

    @property
    def active_version(self) -> int:
        if self._latest is None:
            self.refresh()
        assert self._latest is not None
        return self._latest

    @property
    def min_decryption_version(self) -> int:
        if self._latest is None:
            self.refresh()
        return self._min_decryption

    def refresh(self) -> None:
        """Read latest and minimum decryption version (`GET transit/keys/<name>`)."""
        try:
            data = self._client.secrets.transit.read_key(self._name, mount_point=self._mount)[
                "data"
            ]
        except hvac.exceptions.InvalidPath:
            raise KeyringError(f"Vault transit key {self._name!r} not found") from None
        with self._lock:
            self._latest = int(data["latest_version"])
            self._min_decryption = int(data.get("min_decryption_version") or 1)

    def _aad(self, aad: bytes) -> str:
        return _std_b64(b"|".join([SP2.encode(), self._name.encode(), aad]))

    def wrap(self, dek: bytes, aad: bytes) -> WrappedKey:
        response: Any = self._client.secrets.transit.encrypt_data(
            self._name,
            plaintext=_std_b64(dek),
            associated_data=self._aad(aad),
            mount_point=self._mount,
        )
        ciphertext = str(response["data"]["ciphertext"])
        version = vault_version(ciphertext)
        with self._lock:
            if self._latest is None or version > self._latest:
                self._latest = version  # Vault rotated since the last refresh
        return WrappedKey(version, ciphertext.encode())

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        ciphertext = blob.decode("ascii", errors="replace")
        if vault_version(ciphertext) != version:
            raise DecryptionError("ciphertext header and Vault key version disagree")
        try:
            response: Any = self._client.secrets.transit.decrypt_data(
                self._name,
                ciphertext=ciphertext,
                associated_data=self._aad(aad),
                mount_point=self._mount,
            )
        except hvac.exceptions.InvalidRequest as exc:
            message = str(exc)
            if "disallowed by policy" in message or "too old" in message:
                raise KeyVersionUnavailable(
                    f"Vault transit key {self._name!r} version {version} may no longer decrypt",
                    key_id=self._name,
                    version=version,
                    state="disabled",
                ) from None
            raise DecryptionError("ciphertext does not decrypt for this record") from None
        return base64.b64decode(response["data"]["plaintext"])


class VaultTransitProvider:
    """KeyProvider whose keyrings are Vault transit keys (one per key id)."""

    def __init__(self, client: hvac.Client, *, mount_point: str = "transit") -> None:
        self._client = client
        self._mount = mount_point
        self._rings: dict[str, VaultTransitKeyring] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, *, mount_point: str = "transit") -> VaultTransitProvider:
        """hvac reads VAULT_ADDR, VAULT_TOKEN (a mounted token file or agent sink in
        production) and VAULT_CACERT from the environment."""
        return cls(hvac.Client(), mount_point=mount_point)

    def keyring(self, key_id: str) -> VaultTransitKeyring:
        with self._lock:
            ring = self._rings.get(key_id)
            if ring is None:
                ring = self._rings[key_id] = VaultTransitKeyring(
                    self._client, key_id, mount_point=self._mount
                )
        return ring

    def reload(self) -> None:
        for ring in list(self._rings.values()):
            ring.refresh()
