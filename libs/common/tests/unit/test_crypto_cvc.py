import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sanalpos_common.crypto.aad import cvc_aad
from sanalpos_common.crypto.cvc import (
    CvcExpiredError,
    decrypt_cvc,
    encrypt_cvc,
    period_version,
    rotate_cvc_keys,
    version_start,
)
from sanalpos_common.crypto.envelope import decrypt, key_version
from sanalpos_common.crypto.keyring import Keyring, KeyringError, KeyState
from sanalpos_common.crypto.providers import SecretKeyProvider, write_key_file

HOUR = timedelta(hours=1)
TTL = timedelta(hours=2)
T0 = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
AAD = cvc_aad("mer_a", uuid.UUID(int=7))


def test_rotation_has_current_active_and_next_pre_distributed() -> None:
    ring = rotate_cvc_keys(None, T0, HOUR, TTL)
    current = period_version(T0, HOUR)
    assert version_start(current, HOUR) == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert ring.active_version == current
    assert ring.state(current + 1) is KeyState.DECRYPT_ONLY
    assert rotate_cvc_keys(ring, T0 + timedelta(minutes=5), HOUR, TTL) == ring  # idempotent
    later = rotate_cvc_keys(ring, T0 + HOUR, HOUR, TTL)
    assert later.active_version == current + 1
    assert later.keys[current + 1] == ring.keys[current + 1]  # readers already had it


def test_cvc_written_at_t0_is_unreadable_after_ttl() -> None:
    ring = rotate_cvc_keys(None, T0, HOUR, TTL)
    token = encrypt_cvc(ring, "123", AAD, now=T0, period=HOUR, ttl=TTL)
    # readable while the TTL runs (authorization lag), across one rotation
    after_one = rotate_cvc_keys(ring, T0 + HOUR, HOUR, TTL)
    assert decrypt_cvc(after_one, token, AAD, now=T0 + HOUR, period=HOUR, ttl=TTL) == "123"
    # past the TTL the version is gone from the keyring: nobody can read the Kafka copy
    expired = rotate_cvc_keys(after_one, T0 + TTL, HOUR, TTL)
    assert key_version(token)[1] not in expired.keys
    with pytest.raises(CvcExpiredError, match="security code expired"):
        decrypt_cvc(expired, token, AAD, now=T0 + TTL, period=HOUR, ttl=TTL)
    with pytest.raises(KeyringError, match="has no version"):
        decrypt(expired, token, AAD)  # the generic path fails too, naming the version


def test_stale_keyring_still_holding_an_expired_version_is_refused_by_the_clock() -> None:
    ring = rotate_cvc_keys(None, T0, HOUR, TTL)
    token = encrypt_cvc(ring, "999", AAD, now=T0, period=HOUR, ttl=TTL)
    with pytest.raises(CvcExpiredError):
        decrypt_cvc(ring, token, AAD, now=T0 + TTL + HOUR, period=HOUR, ttl=TTL)


def test_writer_with_a_stalled_keyring_fails_loudly() -> None:
    ring = rotate_cvc_keys(None, T0, HOUR, TTL)
    with pytest.raises(CvcExpiredError, match="stale"):
        encrypt_cvc(ring, "123", AAD, now=T0 + 3 * HOUR, period=HOUR, ttl=TTL)


def test_policy_and_input_checks() -> None:
    with pytest.raises(ValueError, match="two periods"):
        rotate_cvc_keys(None, T0, HOUR, HOUR)
    with pytest.raises(ValueError, match="aware"):
        period_version(datetime(2026, 1, 1), HOUR)
    with pytest.raises(KeyringError):
        rotate_cvc_keys(Keyring.generate("pan"), T0, HOUR, TTL)


def test_every_kept_version_is_younger_than_ttl() -> None:
    ring = None
    now = T0
    for _ in range(30):
        now += timedelta(minutes=17)
        ring = rotate_cvc_keys(ring, now, HOUR, TTL)
        assert ring is not None
        assert all(now - version_start(v, HOUR) < TTL for v in ring.keys)
        assert len(ring.keys) <= 4


def test_version_destroyed_early_reads_as_expired_not_as_a_config_error() -> None:
    ring = rotate_cvc_keys(None, T0, HOUR, TTL)
    token = encrypt_cvc(ring, "123", AAD, now=T0, period=HOUR, ttl=TTL)
    later = rotate_cvc_keys(ring, T0 + HOUR, HOUR, TTL)
    shredded = later.with_state(period_version(T0, HOUR), KeyState.DESTROYED)  # incident response
    with pytest.raises(CvcExpiredError):
        decrypt_cvc(shredded, token, AAD, now=T0 + HOUR, period=HOUR, ttl=TTL)


def test_cvc_keyring_through_a_reloaded_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "cvc.json"
    write_key_file(path, rotate_cvc_keys(None, T0, HOUR, TTL).to_json())
    intake = SecretKeyProvider({"cvc": f"file:{path}"})
    authorization = SecretKeyProvider({"cvc": f"file:{path}"})
    token = encrypt_cvc(intake.keyring("cvc"), "321", AAD, now=T0, period=HOUR, ttl=TTL)
    # the scheduler rotates past the TTL; both services reload
    ring = Keyring.from_json(path.read_text())
    for step in (HOUR, TTL):
        ring = rotate_cvc_keys(ring, T0 + step, HOUR, TTL)
        write_key_file(path, ring.to_json())
    authorization.reload()
    with pytest.raises(CvcExpiredError):
        decrypt_cvc(authorization.keyring("cvc"), token, AAD, now=T0 + TTL, period=HOUR, ttl=TTL)


def test_cvc_key_file_rotation_is_safe_from_several_processes(tmp_path: Path) -> None:
    import stat
    from concurrent.futures import ThreadPoolExecutor

    from sanalpos_common.crypto.cvc import rotate_cvc_key_file

    path = tmp_path / "keys" / "cvc.json"
    with ThreadPoolExecutor(8) as pool:
        rings = list(pool.map(lambda _: rotate_cvc_key_file(path, T0, HOUR, TTL), range(16)))
    assert all(r == rings[0] for r in rings)  # one writer won, everybody agrees on the keys
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    later = rotate_cvc_key_file(path, T0 + TTL, HOUR, TTL)
    assert period_version(T0, HOUR) not in later.keys


async def test_maintain_cvc_key_file_rotates_and_reloads(tmp_path: Path) -> None:
    import asyncio

    from sanalpos_common.crypto.cvc import maintain_cvc_key_file

    path = tmp_path / "cvc.json"
    provider = SecretKeyProvider({"cvc": f"file:{path}"})
    task = asyncio.create_task(maintain_cvc_key_file(path, interval=0.01, provider=provider))
    try:
        while not path.exists():
            await asyncio.sleep(0.01)
        now = datetime.now(UTC)
        assert provider.keyring("cvc").active_version == period_version(now, HOUR)
    finally:
        task.cancel()


def test_operator_suspension_of_an_old_version_survives_rotation() -> None:
    ring = rotate_cvc_keys(None, T0, HOUR, TTL)
    old = period_version(T0, HOUR)
    later = rotate_cvc_keys(ring, T0 + HOUR, HOUR, TTL)
    suspended = later.with_state(old, KeyState.DISABLED)
    assert (
        rotate_cvc_keys(suspended, T0 + HOUR + timedelta(minutes=5), HOUR, TTL).state(old)
        is KeyState.DISABLED
    )
    shredded = later.with_state(old, KeyState.DESTROYED)
    assert rotate_cvc_keys(shredded, T0 + HOUR, HOUR, TTL).state(old) is KeyState.DESTROYED
    assert old not in rotate_cvc_keys(shredded, T0 + TTL, HOUR, TTL).states  # then forgotten
