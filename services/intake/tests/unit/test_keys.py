"""Intake's key wiring: provider specs, live reload of a rotated secret file, the development
CVC file (settings default, rotated at start-up), stale CVC keys refused, secrets from env/file,
loops that stop with the runtime."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from intake.config import IntakeSettings
from intake.service_layer.card_protection import CardProtection
from sanalpos_common.crypto import Keyring, decrypt, key_version
from sanalpos_common.crypto.aad import cvc_aad
from sanalpos_common.crypto.cvc import (
    CvcExpiredError,
    cvc_key_file,
    decrypt_cvc,
    period_version,
    rotates_cvc_file,
)
from sanalpos_common.crypto.providers import write_key_file
from sanalpos_common.crypto.service_keys import load_card_keys, secret_value
from sanalpos_common.runtime import Runtime
from sanalpos_common.settings import DEV_PAN_KEYRING

PAN = "4000056655665556"


def test_development_default_is_the_shared_cvc_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANALPOS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("INTAKE_CVC_KEYRING", raising=False)
    settings = IntakeSettings()
    assert settings.cvc_keyring is not None
    spec = settings.cvc_keyring.get_secret_value()
    assert spec == f"file:{tmp_path / 'keys' / 'cvc.json'}"
    assert rotates_cvc_file(True, spec, None) and not rotates_cvc_file(False, spec, None)
    assert not rotates_cvc_file(True, DEV_PAN_KEYRING, None)
    assert cvc_key_file(f"local:{tmp_path}") == tmp_path / "cvc.json"


def test_production_requires_a_cvc_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANALPOS_ENV", "production")
    monkeypatch.setenv("SANALPOS_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SANALPOS_KAFKA_MIN_INSYNC_REPLICAS", "2")
    monkeypatch.delenv("INTAKE_CVC_KEYRING", raising=False)
    names = ("PAN_KEYRING", "FINGERPRINT_KEY", "ADMIN_TOKEN", "CLIENT_ENCRYPTION_KEY")
    for name in (*names, "WEBHOOK_SECRET_KEYRING"):
        monkeypatch.setenv(f"INTAKE_{name}", "env:SOMETHING_REAL")
    with pytest.raises(ValueError, match="cvc_keyring"):
        IntakeSettings()


def test_a_rotated_secret_file_is_used_after_reload_without_rebuilding(tmp_path: Path) -> None:
    pan_file = tmp_path / "pan.json"
    ring = Keyring.generate("pan")
    write_key_file(pan_file, ring.to_json())
    keys = load_card_keys(
        f"file:{pan_file}", f"file:{tmp_path / 'keys' / 'cvc.json'}", rotate_cvc_file=True
    )
    assert (tmp_path / "keys" / "cvc.json").stat().st_mode & 0o777 == 0o600
    protection = CardProtection(keys.pan, keys.cvc, b"f" * 32)
    payment_id = uuid.uuid4()
    first = protection.protect("mer_a", payment_id, PAN, "918", 12, 2031)
    assert key_version(first.pan_ciphertext) == ("pan", 1)
    assert key_version(first.cvc_ciphertext or "")[1] == period_version(datetime.now(UTC))

    write_key_file(pan_file, ring.rotated().to_json())  # the Secret changes underneath
    keys.pan_provider.reload()
    second = protection.protect("mer_a", payment_id, PAN, "918", 12, 2031)
    assert key_version(second.pan_ciphertext) == ("pan", 2)
    for card in (first, second):
        assert decrypt(keys.pan, card.pan_ciphertext, _pan_aad(payment_id)) == PAN.encode()
    now = datetime.now(UTC)
    assert first.cvc_ciphertext is not None
    assert (
        decrypt_cvc(keys.cvc, first.cvc_ciphertext, cvc_aad("mer_a", payment_id), now=now) == "918"
    )
    with pytest.raises(CvcExpiredError):
        decrypt_cvc(
            keys.cvc,
            first.cvc_ciphertext,
            cvc_aad("mer_a", payment_id),
            now=now + timedelta(hours=3),
        )


def _pan_aad(payment_id: uuid.UUID) -> bytes:
    from sanalpos_common.crypto.aad import pan_aad

    return pan_aad("mer_a", payment_id)


def test_a_stale_cvc_keyring_refuses_to_encrypt(tmp_path: Path) -> None:
    keys = load_card_keys(DEV_PAN_KEYRING, f"file:{tmp_path / 'cvc.json'}", rotate_cvc_file=True)
    later = datetime.now(UTC) + timedelta(hours=3)
    protection = CardProtection(keys.pan, keys.cvc, b"f" * 32, clock=lambda: later)
    with pytest.raises(CvcExpiredError, match="stale"):
        protection.protect("mer_a", uuid.uuid4(), PAN, "918", 12, 2031)
    ok, detail = asyncio.run(keys.cvc_ready())
    assert ok, detail


def test_secret_values_from_env_or_file(tmp_path: Path) -> None:
    (tmp_path / "fp").write_text("from-a-file\n")
    assert secret_value(f"file:{tmp_path / 'fp'}") == "from-a-file"
    assert secret_value("env:FP", {"FP": "from-env"}) == "from-env"
    assert secret_value("plain-key") == "plain-key"


async def test_forever_loops_stop_with_the_runtime() -> None:
    runtime = Runtime(name="t", app=None, host="127.0.0.1", port=0)  # type: ignore[arg-type]
    ticks = 0

    async def forever() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    runtime.add_forever("loop", forever)
    task = asyncio.create_task(runtime.loops["loop"]())
    await asyncio.sleep(0.05)
    for stop in runtime.stoppers:
        stop()
    await asyncio.wait_for(task, 1)
    assert ticks > 0
