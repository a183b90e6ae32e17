import asyncio
import os
import stat
from pathlib import Path

import pytest

from sanalpos_common.crypto.envelope import decrypt, encrypt
from sanalpos_common.crypto.keyring import Keyring, KeyringError
from sanalpos_common.crypto.providers import (
    KeyFilePermissionError,
    LocalKeyringFileProvider,
    SecretKeyProvider,
    StaticKeyProvider,
    provider_from_spec,
    reload_periodically,
    write_key_file,
)
from sanalpos_common.settings import DEV_PAN_KEYRING


def test_local_file_is_created_once_with_owner_only_permissions(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    provider = LocalKeyringFileProvider(directory)
    ring = provider.keyring("pan")
    path = directory / "pan.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    # a second process (new provider) loads the same keys, it does not make new ones
    again = LocalKeyringFileProvider(directory).keyring("pan")
    assert isinstance(again, Keyring) and again.keys == ring.keys


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620])
def test_local_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    provider = LocalKeyringFileProvider(tmp_path)
    provider.keyring("pan")
    os.chmod(tmp_path / "pan.json", mode)
    with pytest.raises(KeyFilePermissionError, match="chmod 600"):
        LocalKeyringFileProvider(tmp_path).keyring("pan")
    with pytest.raises(KeyFilePermissionError):
        provider.reload()


def test_local_provider_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="missing"):
        LocalKeyringFileProvider(tmp_path, create=False).keyring("pan")


def test_secret_file_is_re_read_on_reload(tmp_path: Path) -> None:
    path = tmp_path / "pan.json"
    ring = Keyring.generate("pan")
    write_key_file(path, ring.to_json())
    provider = SecretKeyProvider({"pan": f"file:{path}"})
    token = encrypt(provider.keyring("pan"), b"x", b"a")
    write_key_file(path, ring.rotated().to_json())  # the Secret was rotated
    assert provider.keyring("pan").active_version == 1  # served from memory until reload
    provider.reload()
    assert provider.keyring("pan").active_version == 2
    assert decrypt(provider.keyring("pan"), token, b"a") == b"x"


def test_failed_reload_keeps_the_previous_keys(tmp_path: Path) -> None:
    path = tmp_path / "pan.json"
    write_key_file(path, Keyring.generate("pan").to_json())
    provider = SecretKeyProvider({"pan": f"file:{path}"})
    before = provider.keyring("pan")
    path.write_text("{half written")
    with pytest.raises(KeyringError):
        provider.reload()
    assert provider.keyring("pan") is before


def test_env_source_and_key_id_mismatch() -> None:
    environ = {"PAN": DEV_PAN_KEYRING, "WRONG": Keyring.generate("cvc").to_json()}
    provider = SecretKeyProvider({"pan": "env:PAN", "cvc": "env:MISSING"}, environ=environ)
    assert provider.keyring("pan").key_id == "pan"
    with pytest.raises(KeyringError, match="MISSING is not set"):
        provider.keyring("cvc")
    with pytest.raises(KeyringError, match="holds keyring 'cvc'"):
        SecretKeyProvider({"pan": "env:WRONG"}, environ=environ).keyring("pan")
    with pytest.raises(KeyringError):
        SecretKeyProvider({"pan": "/etc/passwd"})


def test_secret_file_permission_check_is_opt_in(tmp_path: Path) -> None:
    path = tmp_path / "pan.json"
    path.write_text(DEV_PAN_KEYRING)
    os.chmod(path, 0o644)
    assert SecretKeyProvider({"pan": f"file:{path}"}).keyring("pan").key_id == "pan"
    with pytest.raises(KeyFilePermissionError):
        SecretKeyProvider({"pan": f"file:{path}"}, check_permissions=True).keyring("pan")


def test_provider_from_spec(tmp_path: Path) -> None:
    assert provider_from_spec("pan", DEV_PAN_KEYRING).keyring("pan").key_id == "pan"
    local = provider_from_spec("pan", f"local:{tmp_path}")
    assert local.keyring("pan").active_version == 1
    assert (tmp_path / "pan.json").exists()
    assert provider_from_spec("pan", f"file:{tmp_path}/pan.json").keyring("pan").key_id == "pan"
    with pytest.raises(KeyringError):
        provider_from_spec("pan", "ftp://x")
    with pytest.raises(KeyringError, match="no keyring 'cvc'"):
        StaticKeyProvider({}).keyring("cvc")


async def test_reload_periodically_reloads_and_survives_errors(tmp_path: Path) -> None:
    path = tmp_path / "pan.json"
    write_key_file(path, Keyring.generate("pan").to_json())
    provider = SecretKeyProvider({"pan": f"file:{path}"})
    provider.keyring("pan")
    errors: list[Exception] = []
    reloads: list[int] = []
    task = asyncio.create_task(
        reload_periodically(
            provider, 0.01, on_error=errors.append, on_reload=lambda: reloads.append(1)
        )
    )
    try:
        path.write_text("broken")
        while not errors:
            await asyncio.sleep(0.01)
        write_key_file(path, Keyring.generate("pan").rotated().to_json())
        while provider.keyring("pan").active_version != 2:
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert reloads


def test_live_keyring_follows_reloads(tmp_path: Path) -> None:
    from sanalpos_common.crypto.providers import LiveKeyring

    path = tmp_path / "pan.json"
    ring = Keyring.generate("pan")
    write_key_file(path, ring.to_json())
    provider = SecretKeyProvider({"pan": f"file:{path}"})
    live = LiveKeyring(provider, "pan")
    old = encrypt(live, b"x", b"a")
    write_key_file(path, ring.rotated().to_json())
    provider.reload()
    new = encrypt(live, b"y", b"a")
    assert (old.split(".")[2], new.split(".")[2]) == ("1", "2")
    assert decrypt(live, old, b"a") == b"x" and decrypt(live, new, b"a") == b"y"
    with pytest.raises(KeyringError):
        LiveKeyring(provider, "cvc")  # a missing keyring fails at construction
