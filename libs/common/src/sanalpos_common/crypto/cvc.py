"""Short-lived keys for the card security code (CVC/CVV): PCI DSS v4 3.3.1/3.3.2.

The CVC keyring holds one version per time period (default one hour); the version number is the
period index since the Unix epoch, so every holder agrees which version belongs to which hour.
`rotate_cvc_keys` (run by one scheduler, more often than the period) adds the current period's
version (active, used for writes) and the next period's (decrypt-only, so readers hold it before
any writer uses it), and drops every version whose period started `ttl` or more ago: its key
material is gone, so every CVC ciphertext written under it — in Kafka, in a dead-letter topic,
in a backup — is unreadable. Only intake (encrypt) and authorization (decrypt) receive the
keyring; both reload it periodically (`providers.reload_periodically`).

`decrypt_cvc` also refuses, by the clock, a version older than `ttl` even if a stale keyring still
holds it, with `CvcExpiredError`.

Guarantee with period P and ttl T (T >= 2P): a CVC ciphertext is readable for at least T - P
after it was written, and by no one once T has passed.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sanalpos_common.crypto.envelope import decrypt, encrypt, key_version
from sanalpos_common.crypto.keyring import Keyring, KeyringError, KeyState, KeyVersionUnavailable
from sanalpos_common.crypto.providers import KeyProvider, read_keyring_file, write_key_file
from sanalpos_common.crypto.wrapping import KeyWrapper

log = logging.getLogger(__name__)

CVC_KEY_ID = "cvc"
DEFAULT_PERIOD = timedelta(hours=1)
DEFAULT_TTL = timedelta(hours=2)


class CvcExpiredError(KeyringError):
    """The security code's key version has expired (destroyed after its TTL)."""


def _seconds(delta: timedelta) -> int:
    seconds = int(delta.total_seconds())
    if seconds <= 0 or seconds != delta.total_seconds():
        raise ValueError("period and ttl must be a positive whole number of seconds")
    return seconds


def _check_policy(period: timedelta, ttl: timedelta) -> None:
    if _seconds(ttl) < 2 * _seconds(period):
        raise ValueError("ttl must be at least two periods (readable for at least ttl - period)")


def period_version(at: datetime, period: timedelta = DEFAULT_PERIOD) -> int:
    """Key version of the period that contains `at`."""
    if at.tzinfo is None:
        raise ValueError("use an aware datetime")
    return int(at.timestamp()) // _seconds(period)


def version_start(version: int, period: timedelta = DEFAULT_PERIOD) -> datetime:
    return datetime.fromtimestamp(version * _seconds(period), tz=UTC)


def is_expired(version: int, now: datetime, period: timedelta, ttl: timedelta) -> bool:
    return now - version_start(version, period) >= ttl


def rotate_cvc_keys(
    keyring: Keyring | None,
    now: datetime,
    period: timedelta = DEFAULT_PERIOD,
    ttl: timedelta = DEFAULT_TTL,
    *,
    key_id: str = CVC_KEY_ID,
) -> Keyring:
    """The CVC keyring for `now`: current period active, next period pre-distributed
    (decrypt-only), unexpired older periods decrypt-only, expired ones dropped. Idempotent for
    a given period; existing key material of kept versions is preserved."""
    _check_policy(period, ttl)
    current = period_version(now, period)
    old_keys = {} if keyring is None else keyring.keys
    if keyring is not None and keyring.key_id != key_id:
        raise KeyringError(f"keyring {keyring.key_id!r} is not the CVC keyring {key_id!r}")
    keys: dict[int, bytes] = {}
    states: dict[int, KeyState] = {}
    old_states = {} if keyring is None else dict(keyring.states)
    for version, state in old_states.items():
        if version > current + 1 or is_expired(version, now, period, ttl):
            continue  # expired: dropped, material and all
        if state in (KeyState.DISABLED, KeyState.DESTROYED):
            if version in (current, current + 1):
                raise KeyringError(
                    f"CVC key version {version} was {state.value} by an operator; "
                    "it cannot be re-created for its period"
                )
            states[version] = state  # an operator's suspension/destruction stays
            if state is KeyState.DISABLED:
                keys[version] = old_keys[version]
            continue
        keys[version] = old_keys[version]
        states[version] = KeyState.DECRYPT_ONLY
    for version in (current, current + 1):
        if version not in keys:
            keys[version] = os.urandom(32)
    states[current] = KeyState.ACTIVE
    states[current + 1] = KeyState.DECRYPT_ONLY
    return Keyring(key_id, current, keys, states)


def encrypt_cvc(
    keyring: KeyWrapper,
    cvc: str,
    aad: bytes,
    *,
    now: datetime,
    period: timedelta = DEFAULT_PERIOD,
    ttl: timedelta = DEFAULT_TTL,
) -> str:
    """Encrypt with the newest active version, refusing a keyring whose write version started
    two periods or more ago (the rotation or the reload has stalled: fail loudly, not late)."""
    age = now - version_start(keyring.active_version, period)
    if age >= period * 2:
        raise CvcExpiredError(
            f"CVC keyring is stale: write version {keyring.active_version} started {age} ago; "
            "is the CVC key rotation running and the keyring reloaded?"
        )
    _check_policy(period, ttl)
    return encrypt(keyring, cvc.encode(), aad)


def decrypt_cvc(
    keyring: KeyWrapper,
    token: str,
    aad: bytes,
    *,
    now: datetime,
    period: timedelta = DEFAULT_PERIOD,
    ttl: timedelta = DEFAULT_TTL,
) -> str:
    """Decrypt a security code, or raise CvcExpiredError once its TTL has passed."""
    _, version = key_version(token)
    expired = CvcExpiredError(
        f"security code expired: CVC key version {version} (period from "
        f"{version_start(version, period).isoformat()}) is past its {ttl} TTL and destroyed; "
        "authorize without it or ask for the code again"
    )
    if is_expired(version, now, period, ttl):
        raise expired
    try:
        return decrypt(keyring, token, aad).decode()
    except KeyVersionUnavailable:
        if version < keyring.active_version:
            raise expired from None
        raise


def rotate_cvc_key_file(
    path: Path | str,
    now: datetime | None = None,
    period: timedelta = DEFAULT_PERIOD,
    ttl: timedelta = DEFAULT_TTL,
    *,
    key_id: str = CVC_KEY_ID,
    check_permissions: bool = True,
) -> Keyring:
    """`rotate_cvc_keys` on a keyring file, under an exclusive lock, written atomically (0600).
    Safe to run from several processes at once (idempotent per period): in development intake
    and authorization can both maintain the shared file; in production one CronJob does."""
    path = Path(path)
    now = now or datetime.now(UTC)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        current = (
            read_keyring_file(path, check_permissions=check_permissions) if path.exists() else None
        )
        ring = rotate_cvc_keys(current, now, period, ttl, key_id=key_id)
        if ring != current:
            write_key_file(path, ring.to_json())
        return ring
    finally:
        os.close(lock_fd)


async def maintain_cvc_key_file(
    path: Path | str,
    period: timedelta = DEFAULT_PERIOD,
    ttl: timedelta = DEFAULT_TTL,
    *,
    interval: float = 60.0,
    provider: KeyProvider | None = None,
) -> None:
    """Run forever (cancel to stop): rotate the CVC keyring file every `interval` seconds and
    reload `provider` afterwards. Failures are logged; `encrypt_cvc` fails loudly if they last."""
    while True:
        try:
            await asyncio.to_thread(rotate_cvc_key_file, path, None, period, ttl)
            if provider is not None:
                await asyncio.to_thread(provider.reload)
        except Exception as exc:
            log.error("CVC key rotation failed: %s", exc)
        await asyncio.sleep(interval)


def cvc_key_file(spec: str) -> Path | None:
    """The file behind a `file:` or `local:` CVC keyring spec (None for other sources)."""
    spec = spec.strip()
    if spec.startswith("file:"):
        return Path(spec.removeprefix("file:"))
    if spec.startswith("local:"):
        return Path(spec.removeprefix("local:")) / "cvc.json"
    return None


def rotates_cvc_file(is_development: bool, cvc_spec: str, setting: bool | None) -> bool:
    """Whether this service rotates the CVC key file itself: as configured, else only in
    development and only when the keyring is a file."""
    if setting is not None:
        return setting
    return is_development and cvc_key_file(cvc_spec) is not None
