import json
import uuid

import pytest

from sanalpos_common.crypto.aad import pan_aad
from sanalpos_common.crypto.card import card_brand, fingerprint, luhn_valid, mask
from sanalpos_common.crypto.envelope import DecryptionError, decrypt, encrypt, key_version
from sanalpos_common.crypto.keyring import Keyring, KeyringError

PAN = "4111111111111111"


def test_round_trip_and_ciphertext_holds_no_plaintext() -> None:
    ring = Keyring.generate("pan")
    token = encrypt(ring, PAN.encode(), b"aad")
    assert PAN not in token
    assert decrypt(ring, token, b"aad") == PAN.encode()
    assert key_version(token) == ("pan", 1)


def test_ciphertext_moved_to_another_record_does_not_decrypt() -> None:
    ring = Keyring.generate("pan")
    payment_a, payment_b = uuid.uuid4(), uuid.uuid4()
    token = encrypt(ring, PAN.encode(), pan_aad("mer_a", payment_a))
    with pytest.raises(DecryptionError):
        decrypt(ring, token, pan_aad("mer_a", payment_b))
    with pytest.raises(DecryptionError):
        decrypt(ring, token, pan_aad("mer_b", payment_a))


def test_rotation_writes_with_newest_and_still_reads_old() -> None:
    ring = Keyring.generate("pan")
    old = encrypt(ring, b"x", b"a")
    rotated = ring.rotated()
    new = encrypt(rotated, b"y", b"a")
    assert key_version(new) == ("pan", 2)
    assert decrypt(rotated, old, b"a") == b"x"
    with pytest.raises(KeyringError):
        decrypt(ring, new, b"a")


def test_other_keyring_cannot_decrypt() -> None:
    token = encrypt(Keyring.generate("pan"), b"secret", b"a")
    with pytest.raises(DecryptionError):
        decrypt(Keyring.generate("pan"), token, b"a")


def test_tampered_ciphertext_is_rejected() -> None:
    ring = Keyring.generate("pan")
    token = encrypt(ring, b"secret", b"a")
    head, tail = token.rsplit(".", 1)
    flipped = tail[:-2] + ("A" if tail[-2] != "A" else "B") + tail[-1]
    with pytest.raises(DecryptionError):
        decrypt(ring, f"{head}.{flipped}", b"a")


def test_keyring_json_round_trip_and_validation() -> None:
    ring = Keyring.generate("cvc").rotated()
    again = Keyring.from_json(ring.to_json())
    assert again.active_version == 2 and again.keys == ring.keys
    with pytest.raises(KeyringError):
        Keyring.from_json('{"id": "x", "active": 1, "keys": {"1": "c2hvcnQ="}}')
    with pytest.raises(KeyringError):
        Keyring.from_json("not json")


def test_fingerprint_is_keyed_and_stable() -> None:
    assert fingerprint(b"k1", PAN) == fingerprint(b"k1", PAN)
    assert fingerprint(b"k1", PAN) != fingerprint(b"k2", PAN)
    assert PAN not in fingerprint(b"k1", PAN)


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        ("4111111111111111", "411111******1111"),
        ("378282246310005", "378282*****0005"),
        ("4222222222222", "422222***2222"),
        ("123456789012", "12345***9012"),
    ],
)
def test_masking_shows_at_most_first_six_and_last_four(pan: str, masked: str) -> None:
    assert mask(pan) == masked


def test_masking_never_reveals_more_than_allowed() -> None:
    for length in range(1, 20):
        number = "".join(str(i % 10) for i in range(length))
        shown = [c for c in mask(number) if c != "*"]
        assert len(shown) <= min(10, max(0, length - 3))


def test_luhn_and_brand() -> None:
    assert luhn_valid(PAN)
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("41111111111a1111")
    assert card_brand(PAN) == "visa"
    assert card_brand("5555555555554444") == "mastercard"
    assert card_brand("378282246310005") == "amex"


# --- format compatibility, key states, re-wrap --------------------------------------------

from sanalpos_common.crypto.envelope import parse, rewrap  # noqa: E402
from sanalpos_common.crypto.keyring import KeyState, KeyVersionUnavailable  # noqa: E402

# Written by the pre-provider code (format sp1, keyring in the old JSON without "states").
GOLDEN_RING = (
    '{"id": "pan", "active": 2, "keys": {"1": "ZGV2LXBhbi1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDA=", '
    '"2": "w8Ih7PLICPCkuilGcm1axcFzXUclW6f5fNAkWodI4kc="}}'
)
GOLDEN_AAD = b"pan|mer_a|00000000-0000-0000-0000-000000000001"
GOLDEN_V1 = (
    "sp1.pan.1.E9ecA6HGenZIs72_BiGmq-YYqPgDlvWOFqVoI9qrZXsVvuxa-JAqrcHP0BYUpLna_GxaSkGuXSnti_ul."
    "TIvE6Lg3Uf79y07OimyYUzHg3AoCFhz5SJUIVS4Epnl0JbHznswBcbJ6Mhs"
)
GOLDEN_V2 = (
    "sp1.pan.2.Fp5fCPfBdOTsjDexoJf-GkUlEa8fW6HeCx5Ysk2a6mqAJ_z_jl-JfmCl1Dy8ax75mkSH5n_Xo_hY7EB3."
    "XjJIz49ADkRZ2OAphzV28zDKSCIpj3HfQ_IKQ-ccnwpTenR_ygbdNydVSBk"
)


def test_sp1_tokens_written_before_versioned_states_still_decrypt() -> None:
    ring = Keyring.from_json(GOLDEN_RING)
    assert ring.state(1) is KeyState.DECRYPT_ONLY and ring.state(2) is KeyState.ACTIVE
    assert decrypt(ring, GOLDEN_V1, GOLDEN_AAD) == PAN.encode()
    assert decrypt(ring, GOLDEN_V2, GOLDEN_AAD) == PAN.encode()
    again = Keyring.from_json(ring.to_json())
    assert decrypt(again, GOLDEN_V1, GOLDEN_AAD) == PAN.encode()


def test_rotation_marks_previous_decrypt_only_and_writes_newest_active() -> None:
    ring = Keyring.generate("pan").rotated().rotated()
    assert ring.active_version == 3
    assert [ring.state(v) for v in (1, 2, 3)] == [
        KeyState.DECRYPT_ONLY,
        KeyState.DECRYPT_ONLY,
        KeyState.ACTIVE,
    ]
    assert key_version(encrypt(ring, b"x", b"a")) == ("pan", 3)


def test_disabling_newest_rolls_writes_back_to_an_enabled_version() -> None:
    ring = Keyring.generate("pan").rotated()
    with pytest.raises(KeyringError, match="last active"):
        ring.with_state(2, KeyState.DECRYPT_ONLY)
    back = ring.with_state(1, KeyState.ACTIVE).with_state(2, KeyState.DECRYPT_ONLY)
    assert back.active_version == 1
    token = encrypt(ring, b"x", b"a")  # written under v2 before the roll-back
    assert decrypt(back, token, b"a") == b"x"


def test_suspended_and_destroyed_versions_refuse_to_decrypt_with_a_named_reason() -> None:
    ring = Keyring.generate("pan")
    token = encrypt(ring, b"x", b"a")
    ring = ring.rotated()
    suspended = ring.with_state(1, KeyState.DISABLED)
    with pytest.raises(KeyVersionUnavailable, match="version 1 is disabled"):
        decrypt(suspended, token, b"a")
    assert decrypt(suspended.with_state(1, KeyState.DECRYPT_ONLY), token, b"a") == b"x"
    destroyed = ring.with_state(1, KeyState.DESTROYED)
    assert 1 not in destroyed.keys
    assert "ZGV2" not in destroyed.to_json() and '"1": "destroyed"' in destroyed.to_json()
    with pytest.raises(KeyVersionUnavailable, match="version 1 is destroyed"):
        decrypt(Keyring.from_json(destroyed.to_json()), token, b"a")
    with pytest.raises(KeyringError, match="destroyed for good"):
        destroyed.with_state(1, KeyState.ACTIVE)


def test_keyring_refuses_inconsistent_documents() -> None:
    key = "ZGV2LXBhbi1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDA="
    docs = [
        {"id": "pan", "active": 1, "keys": {"1": key}, "states": {"1": "decrypt_only"}},
        {"id": "pan", "active": 1, "keys": {"1": key}, "states": {"1": "destroyed"}},
        {"id": "pan", "active": 1, "keys": {"1": key}, "states": {"2": "active"}},
        {"id": "p.n", "active": 1, "keys": {"1": key}},
        {"id": "pan", "active": 1, "keys": {"1": key}, "states": {"1": "bogus"}},
        {"id": "pan", "active": 1, "keys": {"1": key}, "states": ["x"]},
    ]
    bad = [json.dumps(doc) for doc in docs]
    for doc in bad:
        with pytest.raises(KeyringError):
            Keyring.from_json(doc)


def test_rewrap_moves_only_the_data_key_and_is_idempotent() -> None:
    ring = Keyring.generate("pan")
    token = encrypt(ring, PAN.encode(), b"a")
    ring = ring.rotated()
    moved = rewrap(token, ring, b"a")
    assert key_version(moved) == ("pan", 2)
    assert parse(moved).data == parse(token).data  # the PAN ciphertext stays byte for byte
    assert parse(moved).wrapped != parse(token).wrapped
    assert decrypt(ring, moved, b"a") == PAN.encode()
    assert rewrap(moved, ring, b"a") == moved
    with pytest.raises(DecryptionError):
        rewrap(token, ring, b"other record")
    # after the re-wrap, v1 can go and the moved token still reads
    assert decrypt(ring.with_state(1, KeyState.DESTROYED), moved, b"a") == PAN.encode()


def test_malformed_and_foreign_tokens_are_decryption_errors() -> None:
    ring = Keyring.generate("pan")
    for token in ["", "sp1.pan.x.a.b", "sp9.pan.1.a.b", "sp1.pan.1.a", "sp1.pan.-1.a.b"]:
        with pytest.raises(DecryptionError):
            decrypt(ring, token, b"a")
    with pytest.raises(DecryptionError, match="not sp1:'pan'"):
        decrypt(ring, encrypt(Keyring.generate("cvc"), b"x", b"a"), b"a")


def test_versioned_fingerprints() -> None:
    from sanalpos_common.crypto.card import fingerprint_version, fingerprints

    assert fingerprint(b"k1", PAN).startswith("fp1_")
    assert fingerprint(b"k1", PAN) == fingerprint(b"k1", PAN, version=1)
    v2 = fingerprint(b"k2", PAN, version=2)
    assert v2.startswith("fp2_") and fingerprint_version(v2) == 2
    both = fingerprints({1: b"k1", 2: b"k2"}, PAN)
    assert both == {1: fingerprint(b"k1", PAN), 2: v2}
    with pytest.raises(ValueError):
        fingerprint_version("fp0_" + "0" * 64)


def test_eight_digit_bin_only_for_pans_of_sixteen_digits_or_more() -> None:
    assert mask("4111111111111111", first=8) == "41111111****1111"
    assert mask("378282246310005", first=8) == "378282*****0005"
