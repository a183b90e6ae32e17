"""The re-wrap job for intake's stored cards (`sanalpos keys rewrap --service intake`).

The keyrings the running service holds are built by `sanalpos_common.crypto.service_keys`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg

from sanalpos_common.crypto.aad import token_pan_aad
from sanalpos_common.crypto.envelope import token_prefix
from sanalpos_common.crypto.providers import (
    LiveKeyring,
    provider_from_spec,
)
from sanalpos_common.crypto.rewrap import RewrapProgress, rewrap_table

log = logging.getLogger(__name__)


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
