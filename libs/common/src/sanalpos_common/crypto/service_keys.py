"""The card keyrings a service process holds (intake and authorization), built from settings.

Each keyring setting is a provider spec (`provider_from_spec`): inline keyring JSON, `env:VAR`,
`file:/path` (a mounted Kubernetes Secret), `local:/dir` or `vault-transit:[mount/]name`. The
process holds `LiveKeyring`s and reloads the providers every `key_reload_interval_s`, so a
rotated Secret file is used without a restart. In development the short-lived CVC keyring is a
shared file: every holder makes sure it is current at start-up; intake also keeps it rotated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sanalpos_common.crypto.cvc import (
    DEFAULT_PERIOD,
    cvc_key_file,
    maintain_cvc_key_file,
    rotate_cvc_key_file,
    rotates_cvc_file,
    version_start,
)
from sanalpos_common.crypto.keyring import KeyringError
from sanalpos_common.crypto.providers import (
    KeyProvider,
    LiveKeyring,
    provider_from_spec,
    reload_periodically,
)
from sanalpos_common.runtime import Runtime


def is_remote(spec: str) -> bool:
    """Keyrings that call out on every wrap/unwrap (Vault): use a worker thread."""
    return spec.strip().startswith("vault-transit:")


def secret_value(value: str, environ: dict[str, str] | None = None) -> str:
    """A plain secret, or `env:VAR` / `file:/path` holding it (read once, stripped)."""
    if value.startswith("env:"):
        found = (os.environ if environ is None else environ).get(value.removeprefix("env:"))
        if not found:
            raise KeyringError(f"environment variable {value.removeprefix('env:')} is not set")
        return found.strip()
    if value.startswith("file:"):
        return Path(value.removeprefix("file:")).read_text().strip()
    return value


@dataclass
class CardKeys:
    """The keyrings one service process holds, and how to keep them current."""

    pan_provider: KeyProvider
    pan: LiveKeyring
    cvc_provider: KeyProvider
    cvc: LiveKeyring
    cvc_file: Path | None
    """The development CVC keyring file this process rotated at start-up, else None."""
    offload: bool
    """True when a keyring calls out on every unwrap (Vault): work in a worker thread."""

    def add_loops(self, runtime: Runtime, interval_s: float, *, maintain_cvc_file: bool) -> None:
        """Reload loops; with `maintain_cvc_file`, this process also keeps the file rotated."""
        runtime.add_forever(
            "keys:pan-reload", lambda: reload_periodically(self.pan_provider, interval_s)
        )
        if maintain_cvc_file and self.cvc_file is not None:
            cvc_file = self.cvc_file
            runtime.add_forever(
                "keys:cvc-rotate",
                lambda: maintain_cvc_key_file(
                    cvc_file, interval=interval_s, provider=self.cvc_provider
                ),
            )
        else:
            runtime.add_forever(
                "keys:cvc-reload", lambda: reload_periodically(self.cvc_provider, interval_s)
            )

    async def cvc_ready(self) -> tuple[bool, str]:
        """Readiness: the CVC write key is the current or the previous period's (a stalled
        rotation or reload makes card payments fail; better not ready than 500s)."""
        version = self.cvc.active_version
        age = datetime.now(UTC) - version_start(version)
        return age < 2 * DEFAULT_PERIOD, f"writes with v{version}, started {age} ago"


def load_card_keys(
    pan_spec: str, cvc_spec: str, *, rotate_cvc_file: bool, check_permissions: bool = True
) -> CardKeys:
    """Build providers (failing fast on a missing keyring); rotate the CVC file first when
    this process is to keep it current."""
    cvc_file = cvc_key_file(cvc_spec) if rotate_cvc_file else None
    if cvc_file is not None:
        rotate_cvc_key_file(cvc_file, check_permissions=check_permissions)
    pan_provider = provider_from_spec("pan", pan_spec)
    cvc_provider = provider_from_spec("cvc", cvc_spec)
    return CardKeys(
        pan_provider=pan_provider,
        pan=LiveKeyring(pan_provider, "pan"),
        cvc_provider=cvc_provider,
        cvc=LiveKeyring(cvc_provider, "cvc"),
        cvc_file=cvc_file,
        offload=is_remote(pan_spec) or is_remote(cvc_spec),
    )


def card_keys_from_settings(
    pan_keyring: str,
    cvc_keyring: str | None,
    *,
    is_development: bool,
    cvc_rotate_file: bool | None,
) -> CardKeys:
    """The service settings' keyring specs to `CardKeys` (the settings refuse a missing CVC
    keyring outside development, where it defaults to the shared file)."""
    if cvc_keyring is None:
        raise KeyringError("no CVC keyring configured")
    rotate = rotates_cvc_file(is_development, cvc_keyring, cvc_rotate_file)
    return load_card_keys(pan_keyring, cvc_keyring, rotate_cvc_file=rotate)
