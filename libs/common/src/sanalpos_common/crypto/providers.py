"""Where keyrings come from, behind one interface.

    provider.keyring("pan")  -> KeyWrapper (a Keyring, or a Vault transit key)
    provider.reload()        -> re-read the source; on failure the previous keyrings stay

Providers:
    StaticKeyProvider          keyrings given in code (tests, settings already parsed)
    LocalKeyringFileProvider   development: <dir>/<key_id>.json, created on first use with
                               mode 0600, refused when group/other may read it
    SecretKeyProvider          a JSON value from an env var (`env:NAME`) or a file (`file:/path`,
                               e.g. a mounted Kubernetes Secret), re-read on reload
    VaultTransitProvider       (crypto.vault) KEK stays in Vault transit

`provider_from_spec(key_id, spec)` turns one settings value into a provider, so a service can keep
one `SecretStr` setting per keyring and accept any source.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from sanalpos_common.crypto.keyring import Keyring, KeyringError
from sanalpos_common.crypto.wrapping import KeyWrapper, WrappedKey

log = logging.getLogger(__name__)


class KeyProvider(Protocol):
    def keyring(self, key_id: str) -> KeyWrapper: ...

    def reload(self) -> None: ...


class KeyFilePermissionError(KeyringError):
    """A key file that others than its owner may read, or that someone else owns."""


def check_key_file(path: Path) -> None:
    """Refuse a key file readable or writable by group/other, or not owned by this user."""
    info = path.stat()
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFilePermissionError(
            f"{path}: mode {stat.filemode(info.st_mode)} lets group/other access key material; "
            f"run `chmod 600 {path}`"
        )
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise KeyFilePermissionError(f"{path}: owned by uid {info.st_uid}, not by this user")


def write_key_file(path: Path, text: str) -> None:
    """Atomically replace `path` with `text`, mode 0600 from the first byte (no umask window)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create_exclusively(path: Path, text: str) -> None:
    """Publish a complete 0600 file at `path` unless one exists (another process won the race:
    its keyring is the one everybody loads). Readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return
        log.warning("created development keyring %s", path)
    finally:
        tmp.unlink(missing_ok=True)


def read_keyring_file(path: Path, *, check_permissions: bool = True) -> Keyring:
    if check_permissions:
        check_key_file(path)
    return Keyring.from_json(path.read_text())


class StaticKeyProvider:
    def __init__(self, keyrings: Mapping[str, KeyWrapper]) -> None:
        self._rings = dict(keyrings)

    def keyring(self, key_id: str) -> KeyWrapper:
        try:
            return self._rings[key_id]
        except KeyError:
            raise KeyringError(f"no keyring {key_id!r} configured") from None

    def reload(self) -> None:
        return None


class _CachingProvider:
    """Loads each key id once, serves it from memory, swaps all atomically on reload."""

    def __init__(self) -> None:
        self._rings: dict[str, KeyWrapper] = {}
        self._lock = threading.Lock()

    def _load(self, key_id: str) -> KeyWrapper:  # pragma: no cover - abstract
        raise NotImplementedError

    def keyring(self, key_id: str) -> KeyWrapper:
        ring = self._rings.get(key_id)
        if ring is None:
            with self._lock:
                ring = self._rings.get(key_id)
                if ring is None:
                    ring = self._rings[key_id] = self._checked(key_id, self._load(key_id))
        return ring

    @staticmethod
    def _checked(key_id: str, ring: KeyWrapper) -> KeyWrapper:
        if ring.key_id != key_id:
            raise KeyringError(f"keyring source for {key_id!r} holds keyring {ring.key_id!r}")
        return ring

    def reload(self) -> None:
        """Re-read every loaded key id; if any fails, nothing changes and the error is raised."""
        fresh = {key_id: self._checked(key_id, self._load(key_id)) for key_id in list(self._rings)}
        with self._lock:
            self._rings.update(fresh)


class LocalKeyringFileProvider(_CachingProvider):
    """Development keyrings in `<directory>/<key_id>.json` (0600, directory 0700).

    A missing file is created with a fresh keyring on first use (`create=True`); a file that
    group/other can read, or that another user owns, is refused.
    """

    def __init__(self, directory: Path | str, *, create: bool = True) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.create = create

    def path(self, key_id: str) -> Path:
        if not key_id or "/" in key_id or key_id.startswith("."):
            raise KeyringError(f"bad key id {key_id!r}")
        return self.directory / f"{key_id}.json"

    def _load(self, key_id: str) -> Keyring:
        path = self.path(key_id)
        if not path.exists():
            if not self.create:
                raise KeyringError(f"{path}: keyring file missing")
            _create_exclusively(path, Keyring.generate(key_id).to_json())
        return read_keyring_file(path)


class SecretKeyProvider(_CachingProvider):
    """Keyring JSON from env vars or files, per key id: {"pan": "env:INTAKE_PAN_KEYRING",
    "cvc": "file:/var/run/secrets/sanalpos/cvc.json"}. Re-read on every `reload()`, so a
    rotated Kubernetes Secret (kubelet updates mounted files in place) is picked up.

    File permissions are not checked by default: a Secret volume's mode and ownership are set
    by `defaultMode`/`fsGroup` (use 0400/0440); pass `check_permissions=True` outside Kubernetes.
    """

    def __init__(
        self,
        sources: Mapping[str, str],
        *,
        environ: Mapping[str, str] | None = None,
        check_permissions: bool = False,
    ) -> None:
        super().__init__()
        for key_id, source in sources.items():
            if not source.startswith(("env:", "file:")):
                raise KeyringError(f"source for {key_id!r} must start with env: or file:")
        self.sources = dict(sources)
        self._environ = environ
        self.check_permissions = check_permissions

    def _load(self, key_id: str) -> KeyWrapper:
        from sanalpos_common.crypto.sealed import key_wrapper_from_json

        try:
            source = self.sources[key_id]
        except KeyError:
            raise KeyringError(f"no source configured for keyring {key_id!r}") from None
        kind, _, where = source.partition(":")
        if kind == "env":
            environ = os.environ if self._environ is None else self._environ
            text = environ.get(where)
            if not text:
                raise KeyringError(f"environment variable {where} is not set")
            return key_wrapper_from_json(text)
        path = Path(where)
        if self.check_permissions:
            check_key_file(path)
        return key_wrapper_from_json(path.read_text())


def provider_from_spec(key_id: str, spec: str) -> KeyProvider:
    """One settings value -> a provider holding keyring `key_id`:

    '{"id": ...}'            the keyring JSON itself (today's settings values)
    'env:NAME'               keyring JSON in another env var, re-read on reload
    'file:/path'             keyring JSON in a (secret) file, re-read on reload
    'local:/dir'             development keyring file <dir>/<key_id>.json, created 0600
    'vault-transit:<name>'   Vault transit key <name> (VAULT_ADDR/VAULT_TOKEN from env);
    'vault-transit:<mount>/<name>'
    """
    spec = spec.strip()
    if spec.startswith("{"):
        from sanalpos_common.crypto.sealed import key_wrapper_from_json

        return StaticKeyProvider({key_id: key_wrapper_from_json(spec)})
    if spec.startswith(("env:", "file:")):
        return SecretKeyProvider({key_id: spec})
    if spec.startswith("local:"):
        return LocalKeyringFileProvider(spec.removeprefix("local:"))
    if spec.startswith("vault-transit:"):
        from sanalpos_common.crypto.vault import VaultTransitProvider

        mount, _, name = spec.removeprefix("vault-transit:").rpartition("/")
        provider = VaultTransitProvider.from_env(mount_point=mount or "transit")
        return _Renamed(provider, key_id, name)
    raise KeyringError(f"unknown keyring source for {key_id!r}")


class _Renamed:
    """Serves the provider's keyring `name` under the service's key id."""

    def __init__(self, inner: KeyProvider, key_id: str, name: str) -> None:
        self._inner, self._key_id, self._name = inner, key_id, name

    def keyring(self, key_id: str) -> KeyWrapper:
        if key_id != self._key_id:
            raise KeyringError(f"no keyring {key_id!r} configured")
        return self._inner.keyring(self._name)

    def reload(self) -> None:
        self._inner.reload()


class LiveKeyring:
    """A KeyWrapper that always uses the provider's current keyring for `key_id`: hand it to
    code that holds a keyring for its lifetime (handlers, CardProtection) and reloads of the
    provider take effect without rebuilding anything."""

    def __init__(self, provider: KeyProvider, key_id: str) -> None:
        self.provider = provider
        self._key_id = key_id
        provider.keyring(key_id)  # fail at start-up, not on the first payment

    @property
    def current(self) -> KeyWrapper:
        return self.provider.keyring(self._key_id)

    @property
    def key_id(self) -> str:
        return self.current.key_id

    @property
    def format(self) -> str:
        return self.current.format

    @property
    def active_version(self) -> int:
        return self.current.active_version

    def wrap(self, dek: bytes, aad: bytes) -> WrappedKey:
        return self.current.wrap(dek, aad)

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        return self.current.unwrap(version, blob, aad)

    def refresh(self) -> None:
        """Reload the provider (the re-wrap job calls this to learn the newest version)."""
        self.provider.reload()


async def reload_periodically(
    provider: KeyProvider,
    interval: float,
    *,
    on_error: Callable[[Exception], None] | None = None,
    on_reload: Callable[[], None] | None = None,
) -> None:
    """Run forever (cancel the task to stop): reload the provider every `interval` seconds in
    a worker thread. A failed reload keeps the previous keyrings and is logged / reported."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(provider.reload)
        except Exception as exc:
            log.error("keyring reload failed; keeping the previous keys: %s", exc)
            if on_error is not None:
                on_error(exc)
        else:
            if on_reload is not None:
                on_reload()
