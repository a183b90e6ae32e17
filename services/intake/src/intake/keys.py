"""Intake's keys: providers built from settings, their reload loops, the development CVC key
file, and the re-wrap job for stored cards (`sanalpos keys rewrap --service intake`).

Each keyring setting is a provider spec (`provider_from_spec`): inline keyring JSON, `env:VAR`,
`file:/path` (a mounted Kubernetes Secret), `local:/dir` or `vault-transit:[mount/]name`. The
service holds `LiveKeyring`s and reloads the providers every `key_reload_interval_s`, so a
rotated Secret file is used without a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from sanalpos_common.crypto.aad import token_pan_aad
from sanalpos_common.crypto.cvc import (
    DEFAULT_PERIOD,
    cvc_key_file,
    maintain_cvc_key_file,
    rotate_cvc_key_file,
    version_start,
)
from sanalpos_common.crypto.envelope import token_prefix
from sanalpos_common.crypto.keyring import KeyringError
from sanalpos_common.crypto.providers import (
    KeyProvider,
    LiveKeyring,
    provider_from_spec,
    reload_periodically,
)
from sanalpos_common.crypto.rewrap import RewrapProgress, rewrap_table
from sanalpos_common.runtime import Runtime

log = logging.getLogger(__name__)


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
    """The CVC keyring file this process rotates (development), else None."""
    offload: bool

    def add_loops(self, runtime: Runtime, interval_s: float) -> None:
        runtime.add_forever(
            "keys:pan-reload", lambda: reload_periodically(self.pan_provider, interval_s)
        )
        if self.cvc_file is not None:
            cvc_file = self.cvc_file
            runtime.add_forever(
                "keys:cvc-rotate",
                lambda: maintain_cvc_key_file(
                    cvc_file, interval=interval_s, provider=self.cvc_provider
                ),
            )
        else:
            runtime.add_forever(
                "keys:cvc-reload",
                lambda: reload_periodically(self.cvc_provider, interval_s),
            )

    async def cvc_ready(self) -> tuple[bool, str]:
        """Readiness: the CVC write key is the current or the previous period's (a stalled
        rotation or reload makes intake refuse card payments; better not ready than 500s)."""
        version = self.cvc.active_version
        age = datetime.now(UTC) - version_start(version)
        return age < 2 * DEFAULT_PERIOD, f"writes with v{version}, started {age} ago"


def load_card_keys(
    pan_spec: str, cvc_spec: str, *, rotate_cvc_file: bool, check_permissions: bool = True
) -> CardKeys:
    """Build providers (failing fast on a missing keyring); rotate the CVC file first when
    this process maintains it."""
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


# --- re-wrap job -------------------------------------------------------------------------


def _token_aad(row: asyncpg.Record) -> bytes:
    return token_pan_aad(row["merchant_id"], row["token"])


async def rewrap_job(batch_size: int, progress: Callable[[RewrapProgress], None]) -> int:
    """Re-wrap every stored card (`card_tokens.pan_ciphertext`) onto the PAN keyring's newest
    version. Settings as the service's (INTAKE_DATABASE_URL, INTAKE_PAN_KEYRING). Resumable:
    run again after a stop. Returns the rows still not on the newest version."""
    from intake.config import IntakeSettings

    settings = IntakeSettings()
    provider = provider_from_spec("pan", settings.pan_keyring.get_secret_value())
    keyring = LiveKeyring(provider, "pan")
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=1, max_size=2
    )
    assert pool is not None
    try:
        await rewrap_table(
            pool,
            "card_tokens",
            "token",
            "pan_ciphertext",
            _token_aad,
            keyring,
            batch_size,
            progress,
        )
        newest = token_prefix(keyring)
        left = await pool.fetchval(
            "SELECT count(*) FROM card_tokens WHERE pan_ciphertext IS NOT NULL "
            "AND left(pan_ciphertext, length($1)) <> $1",
            newest,
        )
        return int(left)
    finally:
        await pool.close()
