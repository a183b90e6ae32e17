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
