"""Property tests of the envelope: round trip, record binding, non-malleability."""

from hypothesis import given, settings
from hypothesis import strategies as st

from sanalpos_common.crypto.envelope import decrypt, encrypt, rewrap
from sanalpos_common.crypto.keyring import Keyring, KeyringError
from sanalpos_common.crypto.wrapping import DecryptionError

RING = Keyring.generate("pan")
ROTATED = RING.rotated()
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_round_trip_and_rewrap_keep_the_plaintext(plaintext: bytes, aad: bytes) -> None:
    token = encrypt(RING, plaintext, aad)
    assert decrypt(RING, token, aad) == plaintext
    moved = rewrap(token, ROTATED, aad)
    assert decrypt(ROTATED, moved, aad) == plaintext


@given(st.binary(max_size=32), st.binary(max_size=32), st.binary(max_size=32))
def test_other_associated_data_never_decrypts(plaintext: bytes, aad: bytes, other: bytes) -> None:
    if aad == other:
        return
    token = encrypt(RING, plaintext, aad)
    try:
        decrypt(RING, token, other)
    except DecryptionError:
        return
    raise AssertionError("decrypted under another record's associated data")


@settings(max_examples=300)
@given(st.data())
def test_any_edit_of_a_token_fails_or_yields_the_same_plaintext(data: st.DataObject) -> None:
    token = encrypt(RING, b"4111111111111111", b"aad")
    index = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from(B64URL + "."))
    edited = token[:index] + char + token[index + 1 :]
    try:
        result = decrypt(RING, edited, b"aad")
    except (DecryptionError, KeyringError):
        return
    assert result == b"4111111111111111"  # only base64 padding bits can change harmlessly
