"""Encrypt-only keyrings (sp3): the encrypting service cannot decrypt what it wrote."""

import json

import pytest

from sanalpos_common.crypto.envelope import decrypt, encrypt, key_version, rewrap
from sanalpos_common.crypto.keyring import KeyringError
from sanalpos_common.crypto.providers import SecretKeyProvider, provider_from_spec
from sanalpos_common.crypto.sealed import EncryptOnlyError, SealedKeyring, key_wrapper_from_json
from sanalpos_common.crypto.wrapping import DecryptionError

PAN = b"4111111111111111"


def test_public_only_keyring_encrypts_and_the_private_keyring_decrypts() -> None:
    full = SealedKeyring.generate("pan")
    writer = SealedKeyring.from_json(full.public_only().to_json())
    token = encrypt(writer, PAN, b"aad")
    assert token.startswith("sp3.pan.1.")
    assert decrypt(full, token, b"aad") == PAN
    with pytest.raises(EncryptOnlyError):
        decrypt(writer, token, b"aad")


def test_public_json_carries_no_private_key_material() -> None:
    full = SealedKeyring.generate("pan")
    doc = json.loads(full.public_only().to_json())
    assert "private" not in doc
    assert doc["kind"] == "x25519-sealed"


def test_binding_and_tampering_are_enforced() -> None:
    full = SealedKeyring.generate("pan")
    token = encrypt(full.public_only(), PAN, b"merchant-a|payment-1")
    with pytest.raises(DecryptionError):
        decrypt(full, token, b"merchant-a|payment-2")
    head, wrapped, data = token.rsplit(".", 2)
    flipped = wrapped[:-3] + ("A" if wrapped[-3] != "A" else "B") + wrapped[-2:]
    with pytest.raises(DecryptionError):
        decrypt(full, f"{head}.{flipped}.{data}", b"merchant-a|payment-1")


def test_rotation_and_rewrap_move_to_the_new_public_key() -> None:
    full = SealedKeyring.generate("pan")
    old = encrypt(full.public_only(), PAN, b"a")
    rotated = full.rotated()
    moved = rewrap(old, rotated, b"a")
    assert key_version(moved) == ("pan", 2)
    assert decrypt(rotated, moved, b"a") == PAN
    assert decrypt(rotated, old, b"a") == PAN


def test_mismatched_private_and_public_keys_are_refused() -> None:
    one, two = SealedKeyring.generate("pan"), SealedKeyring.generate("pan")
    doc = json.loads(one.to_json())
    doc["private"] = json.loads(two.to_json())["private"]
    with pytest.raises(KeyringError, match="differ"):
        SealedKeyring.from_json(json.dumps(doc))


def test_providers_load_sealed_or_symmetric_keyrings_by_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    full = SealedKeyring.generate("pan")
    inline = provider_from_spec("pan", full.public_only().to_json()).keyring("pan")
    assert isinstance(inline, SealedKeyring) and not inline.can_decrypt
    monkeypatch.setenv("PAN_KEYS", full.to_json())
    from_env = SecretKeyProvider({"pan": "env:PAN_KEYS"}).keyring("pan")
    assert isinstance(from_env, SealedKeyring) and from_env.can_decrypt
    symmetric = key_wrapper_from_json(
        '{"id": "pan", "active": 1, "keys": {"1": "' + "A" * 43 + '="}}'
    )
    assert symmetric.format == "sp1"
