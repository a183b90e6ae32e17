"""Re-wrap job for stored cards after a PAN keyring rotation, against the real intake database.

The job runs in its own schema (same `card_tokens` table shape) so it never touches the cards
the running system stores under the development keyring.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from intake.bootstrap import MIGRATIONS
from intake.keys import rewrap_job
from intake.service_layer.card_protection import CardProtection
from sanalpos_common.crypto import Keyring, decrypt, key_version
from sanalpos_common.crypto.aad import token_pan_aad
from sanalpos_common.crypto.cvc import rotate_cvc_keys
from sanalpos_common.crypto.providers import write_key_file
from sanalpos_common.crypto.rewrap import RewrapProgress
from sanalpos_common.db import migrate
from sanalpos_common.settings import local_database_url

ROOT = Path(__file__).resolve().parents[4]
PANS = [
    "4000056655665556",
    "5555555555554444",
    "4111111111111111",
    "4012888888881881",
    "5105105105105100",
]


@pytest.fixture
async def schema() -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    url = os.environ.get("INTAKE_DATABASE_URL", local_database_url("intake"))
    name = f"rewrap_{uuid.uuid4().hex[:10]}"
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    await migrate(pool, "intake", MIGRATIONS)  # a fresh database has no intake tables yet
    await pool.execute(f"CREATE SCHEMA {name}")
    await pool.execute(f"CREATE TABLE {name}.card_tokens (LIKE public.card_tokens INCLUDING ALL)")
    try:
        yield name, pool
    finally:
        await pool.execute(f"DROP SCHEMA {name} CASCADE")
        await pool.close()


def schema_url(name: str) -> str:
    url = os.environ.get("INTAKE_DATABASE_URL", local_database_url("intake"))
    return f"{url}{'&' if '?' in url else '?'}search_path={name}"


async def store_cards(pool: asyncpg.Pool, schema_name: str, keyring: Keyring) -> list[str]:
    protection = CardProtection(keyring, rotate_cvc_keys(None, datetime.now(UTC)), b"f" * 32)
    tokens = []
    for pan in PANS:
        row = protection.tokenize("mer_rewrap", pan, 12, 2031, datetime.now(UTC))
        await pool.execute(
            f"INSERT INTO {schema_name}.card_tokens (token, merchant_id, pan_ciphertext, "  # noqa: S608
            "fingerprint, brand, bin, last4, masked_number, exp_month, exp_year, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            *(row[c] for c in ("token", "merchant_id", "pan_ciphertext", "fingerprint", "brand")),
            *(row[c] for c in ("bin", "last4", "masked_number", "exp_month", "exp_year")),
            row["created_at"],
        )
        tokens.append(row["token"])
    return tokens


async def versions(pool: asyncpg.Pool, schema_name: str) -> dict[str, tuple[str, int]]:
    rows = await pool.fetch(f"SELECT token, pan_ciphertext FROM {schema_name}.card_tokens")  # noqa: S608
    return {r["token"]: key_version(r["pan_ciphertext"]) for r in rows}


class Stop(Exception):
    pass


async def test_rewrap_job_moves_stored_cards_to_the_new_version_and_resumes(
    schema: tuple[str, asyncpg.Pool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, pool = schema
    v1 = Keyring.generate("pan")
    tokens = await store_cards(pool, name, v1)
    assert set((await versions(pool, name)).values()) == {("pan", 1)}

    key_file = tmp_path / "pan.json"
    write_key_file(key_file, v1.rotated().to_json())  # the rotated Secret
    monkeypatch.setenv("INTAKE_DATABASE_URL", schema_url(name))
    monkeypatch.setenv("INTAKE_PAN_KEYRING", f"file:{key_file}")
    monkeypatch.setenv("SANALPOS_STATE_DIR", str(tmp_path / "state"))

    seen: list[RewrapProgress] = []

    def stop_after_first_batch(progress: RewrapProgress) -> None:
        seen.append(progress)
        raise Stop  # the job is killed after its first batch committed

    with pytest.raises(Stop):
        await rewrap_job(2, stop_after_first_batch)
    assert seen[0].done == 2 and seen[0].total == 5
    assert sorted(v for _, v in (await versions(pool, name)).values()) == [1, 1, 1, 2, 2]

    resumed: list[RewrapProgress] = []
    left = await rewrap_job(2, resumed.append)
    assert left == 0
    assert resumed[0].total == 3 and resumed[-1].done == 3 and resumed[-1].failed == 0
    assert set((await versions(pool, name)).values()) == {("pan", 2)}
    assert await rewrap_job(2, resumed.append) == 0  # a finished job finds nothing

    new = Keyring.from_json(key_file.read_text())
    for token, pan in zip(tokens, PANS, strict=True):
        ciphertext = await pool.fetchval(
            f"SELECT pan_ciphertext FROM {name}.card_tokens WHERE token = $1",  # noqa: S608
            token,
        )
        assert decrypt(new, ciphertext, token_pan_aad("mer_rewrap", token)) == pan.encode()
        # v2 only (v1 destroyed) still opens every card
        only_v2 = Keyring("pan", 2, {2: new.key(2)})
        assert decrypt(only_v2, ciphertext, token_pan_aad("mer_rewrap", token)) == pan.encode()


async def test_sanalpos_keys_rewrap_command(
    schema: tuple[str, asyncpg.Pool], tmp_path: Path
) -> None:
    name, pool = schema
    v1 = Keyring.generate("pan")
    await store_cards(pool, name, v1)
    key_file = tmp_path / "pan.json"
    write_key_file(key_file, v1.rotated().to_json())
    env = {
        **os.environ,
        "INTAKE_DATABASE_URL": schema_url(name),
        "INTAKE_PAN_KEYRING": f"file:{key_file}",
        "SANALPOS_STATE_DIR": str(tmp_path / "state"),
        "SANALPOS_ENV": "development",
    }
    command = [sys.executable, "-m", "sanalpos_common.cli", "keys", "rewrap", "--service", "intake"]
    result = subprocess.run(
        [*command, "--batch-size", "2"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "batch 3: 5/5 re-wrapped, 0 failed, 0 remaining" in result.stdout
    assert "rewrap finished: 0 rows not on the newest key version" in result.stdout
    assert set((await versions(pool, name)).values()) == {("pan", 2)}
    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0 and "0 rows not on the newest" in again.stdout
    unknown = subprocess.run(
        [*command[:-1], "nosuch"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "no re-wrap job registered for 'nosuch'" in unknown.stderr
